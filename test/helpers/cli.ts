import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { main } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process, with output captured and a chosen cwd and environment. */
export async function runCli(args: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    isTTY: false,
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
  });
  return { code, stdout, stderr };
}

const BIN = path.resolve(import.meta.dirname, '../../bin/hindsight.js');

/** Runs the real `hindsight` bin as a child process (needs the build that `npm test` runs first). */
export function runBin(args: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env: { PATH: process.env.PATH, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** A scratch folder inside the repository (so a config file's imports resolve), readable by other OS users. */
export async function scratchDir(prefix: string): Promise<string> {
  const parent = path.resolve(import.meta.dirname, '../../node_modules/.cache');
  await fs.mkdir(parent, { recursive: true });
  const dir = await fs.mkdtemp(path.join(parent, `${prefix}-`));
  await fs.chmod(dir, 0o755);
  return dir;
}

/**
 * A TS config file exporting one of the test fixtures' configs (testConfig by default, or
 * readModelConfig), as a user's hindsight.config.ts would.
 */
export async function writeTestConfig(dir: string, factory: 'testConfig' | 'readModelConfig' = 'testConfig'): Promise<string> {
  const fixtures = path.resolve(import.meta.dirname, 'fixtures.ts');
  const file = path.join(dir, 'hindsight.config.ts');
  await fs.writeFile(file, `import { ${factory} } from ${JSON.stringify(fixtures)};\nexport default ${factory}();\n`);
  return file;
}

export interface RunningBin {
  child: import('node:child_process').ChildProcess;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves with the first match of `pattern` in stderr, waiting up to `timeoutMs`. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

/** Starts the real `hindsight` bin as a long-running child process (`run`, `listen`, `console`). */
export function startBin(args: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): RunningBin {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env: { PATH: process.env.PATH, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
    for (const wake of waiters) wake();
  });
  child.stdout!.resume();
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    stderr: () => stderr,
    exited,
    waitForOutput(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = stderr.match(pattern);
          if (!match) return;
          cleanup();
          resolve(match);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern} in the output:\n${stderr}`));
        }, timeoutMs);
        const gone = () => {
          cleanup();
          reject(new Error(`the process exited before printing ${pattern}:\n${stderr}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
          child.off('exit', gone);
        };
        waiters.add(check);
        child.once('exit', gone);
        check();
      });
    },
  };
}
