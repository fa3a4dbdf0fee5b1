import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, inject } from 'vitest';

/** A fresh database for one test file, on the run's server. */
export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** A pool on the test database (max 20 connections). */
  readonly pool: pg.Pool;
  /** A URL for another database name on the same server. */
  urlFor(database: string): string;
}

export function databaseUrlFor(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/**
 * Creates `hs_<file>_<random>` before the file's tests and drops it after them, unless a
 * test failed: then it is left for inspection and its name printed.
 */
export function useTestDatabase(fileUrl: string, options: { url?: () => string } = {}): TestDatabase {
  const file = path.basename(fileURLToPath(fileUrl)).replace(/\.test\.ts$/, '').replace(/[^a-z0-9]+/gi, '_').toLowerCase();
  const name = `hs_${file.slice(0, 40)}_${Math.random().toString(36).slice(2, 8)}`;
  let serverUrl = '';
  let pool: pg.Pool | undefined;
  let failed = false;

  beforeAll(async () => {
    serverUrl = options.url ? options.url() : inject('databaseUrl');
    const admin = new pg.Client(serverUrl);
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    pool = new pg.Pool({ connectionString: databaseUrlFor(serverUrl, name), max: 20 });
    pool.on('error', () => undefined);
  });
  afterEach((context) => {
    if (context.task.result?.state === 'fail') failed = true;
  });
  afterAll(async () => {
    await pool?.end();
    if (failed) {
      console.warn(`test database ${name} kept for inspection`);
      return;
    }
    const admin = new pg.Client(serverUrl);
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  });

  return {
    get name() {
      return name;
    },
    get url() {
      return databaseUrlFor(serverUrl, name);
    },
    get pool() {
      if (!pool) throw new Error('the test database is created in beforeAll; use it inside tests');
      return pool;
    },
    urlFor: (database) => databaseUrlFor(serverUrl, database),
  };
}

/**
 * A server URL with superuser rights and wal_level=logical: the run's server when it has
 * them, otherwise an embedded server of this file's own (DATABASE_URL may point at a
 * server without them).
 */
export function usePrivilegedServer(): () => string {
  let url = '';
  let own: { stop(): Promise<void> } | undefined;
  beforeAll(async () => {
    const capabilities = inject('capabilities');
    if (capabilities.superuser && capabilities.walLogical) {
      url = inject('databaseUrl');
      return;
    }
    const { startTestServer } = await import('./testServer.js');
    const server = await startTestServer('privileged');
    own = server;
    url = server.url;
  });
  afterAll(async () => {
    await own?.stop();
  });
  return () => url;
}
