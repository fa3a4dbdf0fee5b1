import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedServer, stopEmbeddedServer } from '../../src/db/embedded/server.js';

/** A throwaway embedded server for tests: fsync off, in a temp folder that records its owner. */
export interface TestServer {
  url: string;
  baseDir: string;
  stop(): Promise<void>;
}

const PREFIX = 'hindsight-test-';

export async function startTestServer(label: string): Promise<TestServer> {
  const baseDir = await fs.mkdtemp(path.join(os.tmpdir(), `${PREFIX}${label.replace(/[^a-z0-9]/gi, '')}-`));
  await fs.writeFile(path.join(baseDir, 'owner.json'), JSON.stringify({ pid: process.pid }));
  const server = await startEmbeddedServer({ baseDir, fsync: false });
  return {
    url: server.url,
    baseDir,
    async stop() {
      await stopEmbeddedServer(baseDir, 'immediate').catch(() => undefined);
      await fs.rm(baseDir, { recursive: true, force: true });
    },
  };
}

/** A vitest run killed with SIGKILL leaves its servers running: stop those whose owner is gone. */
export async function reapStaleTestServers(): Promise<void> {
  const entries = await fs.readdir(os.tmpdir()).catch(() => [] as string[]);
  for (const entry of entries.filter((e) => e.startsWith(PREFIX))) {
    const baseDir = path.join(os.tmpdir(), entry);
    let pid: number | undefined;
    try {
      pid = (JSON.parse(await fs.readFile(path.join(baseDir, 'owner.json'), 'utf8')) as { pid: number }).pid;
    } catch {
      continue;
    }
    if (pid !== undefined && alive(pid)) continue;
    await stopEmbeddedServer(baseDir, 'immediate').catch(() => undefined);
    await fs.rm(baseDir, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
