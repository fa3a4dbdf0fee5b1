import fs from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../src/cli/main.js';
import { pollUntil } from '../../src/db/pollUntil.js';
import { prepareStory } from '../helpers/consoleStory.js';
import { scratchDir } from '../helpers/cli.js';
import { useTestDatabase } from '../helpers/database.js';

// `hindsight console`: prints its URL, serves the pages until its signal, then closes; refuses a
// non-loopback address without a token, takes one from HINDSIGHT_HTTP_TOKEN, and never prints it.

const db = useTestDatabase(import.meta.url);
let config = '';

beforeAll(async () => {
  await prepareStory(db);
  const dir = await scratchDir('console');
  config = path.join(dir, 'hindsight.config.ts');
  const story = path.resolve(import.meta.dirname, '../helpers/consoleStory.ts');
  await fs.writeFile(config, `import { storyConfig } from ${JSON.stringify(story)};\nexport default storyConfig();\n`);
});

/** Starts the command in-process; `stop` aborts its signal and resolves with the exit code. */
function startConsole(args: string[], env: Record<string, string> = {}) {
  const output = { stdout: '', stderr: '' };
  const controller = new AbortController();
  const exited = main(['console', '--config', config, '--database-url', db.url, ...args], {
    stdout: (t) => (output.stdout += t),
    stderr: (t) => (output.stderr += t),
    isTTY: false,
    env,
    cwd: process.cwd(),
    signal: controller.signal,
  });
  let code: number | undefined;
  void exited.then((c) => (code = c));
  const url = async () => {
    const printed = () => /console at (http:\/\/\S+\/)/.exec(output.stdout)?.[1];
    await pollUntil(async () => printed() !== undefined || code !== undefined, 20_000);
    const found = printed();
    if (!found) throw new Error(`the console did not start: ${output.stderr}`);
    return found;
  };
  return { output, url, exited, stop: () => (controller.abort(), exited) };
}

describe('hindsight console', () => {
  test('prints its URL, serves the console until SIGINT/SIGTERM, then stops with exit 0', async () => {
    const running = startConsole(['--http', '127.0.0.1:0']);
    const url = await running.url();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(`${url}aggregate?type=account&id=42`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('alice@support');
    expect(await running.stop()).toBe(0);
    expect(running.output.stderr).toContain('console stopped');
    await expect(fetch(url)).rejects.toThrow();
  });

  test('another address without a token is refused (exit 2); with HINDSIGHT_HTTP_TOKEN it starts, asks for it, and never prints it', async () => {
    const refused = startConsole(['--http', '0.0.0.0:0']);
    expect(await refused.exited).toBe(2);
    expect(refused.output.stderr).toMatch(/binding 0\.0\.0\.0 \(not a loopback address\).*give --token \(or HINDSIGHT_HTTP_TOKEN\)/);

    const token = 'env-token-9f8e7d6c5b4a';
    const running = startConsole(['--http', '0.0.0.0:0'], { HINDSIGHT_HTTP_TOKEN: token });
    const url = (await running.url()).replace('0.0.0.0', '127.0.0.1');
    expect(running.output.stdout).toContain('every request needs the token');
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect(await running.stop()).toBe(0);
    expect(running.output.stdout + running.output.stderr).not.toContain(token);
  });
});
