import type { TestProject } from 'vitest/node';
import { startTestServer, reapStaleTestServers, type TestServer } from '../helpers/testServer.js';
import { probeServer, type ServerCapabilities } from '../helpers/capabilities.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    capabilities: ServerCapabilities;
  }
}

/**
 * One PostgreSQL for the whole run: DATABASE_URL when set, otherwise a throwaway embedded
 * server (fsync off). Both database projects run this setup, so the server is shared
 * through a reference count on globalThis.
 */
interface Shared {
  users: number;
  url: string;
  capabilities: ServerCapabilities;
  server: TestServer | undefined;
}
const KEY = Symbol.for('hindsight.test.server');
const globals = globalThis as { [KEY]?: Promise<Shared> };

async function acquire(): Promise<Shared> {
  await reapStaleTestServers();
  let server: TestServer | undefined;
  let url = process.env.DATABASE_URL;
  if (!url) {
    server = await startTestServer('run');
    url = server.url;
  }
  return { users: 0, url, capabilities: await probeServer(url), server };
}

export default async function setup(project: TestProject) {
  const shared = await (globals[KEY] ??= acquire());
  shared.users += 1;
  project.provide('databaseUrl', shared.url);
  project.provide('capabilities', shared.capabilities);
  return async () => {
    shared.users -= 1;
    if (shared.users === 0) {
      delete globals[KEY];
      await shared.server?.stop();
    }
  };
}
