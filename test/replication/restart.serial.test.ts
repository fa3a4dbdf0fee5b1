import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { startEmbeddedServer, stopEmbeddedServer } from '../../src/db/embedded/server.js';
import { backfill } from '../../src/replication/backfill.js';
import { listen } from '../../src/replication/listener.js';
import { setupReplication } from '../../src/replication/setup.js';
import { migrate } from '../../src/store/migrate.js';
import { startTestServer, type TestServer } from '../helpers/testServer.js';

// Serial, on a server of its own: the test stops PostgreSQL (immediate mode, like a crash)
// under two running listeners, one active and one waiting as a standby.

let server: TestServer;
let pool: pg.Pool;
const config = resolveConfig({
  replication: { slot: 'hs_restart', publication: 'hs_restart_legacy' },
  aggregates: [{ type: 'counter', table: 'counters', key: { column: 'id', type: 'integer' }, capture: 'listener' }],
} as ConfigInput);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  server = await startTestServer('restart');
  pool = new pg.Pool({ connectionString: server.url, max: 4 });
  pool.on('error', () => undefined);
  await migrate({ connectionString: server.url });
  await pool.query(`CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)`);
  await pool.query(`INSERT INTO counters SELECT g, 0 FROM generate_series(1, 5) g`);
  await setupReplication(config, { connectionString: server.url });
  await backfill(config, { connectionString: server.url });
});

afterAll(async () => {
  await pool?.end().catch(() => undefined);
  await server?.stop();
});

/** Increments with retries: the server may be down for a moment. */
async function bump(times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    for (;;) {
      try {
        await pool.query(`UPDATE counters SET n = n + 1 WHERE id = $1`, [1 + (i % 5)]);
        break;
      } catch {
        await sleep(100);
      }
    }
  }
}

async function streamedCount(): Promise<number> {
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM hindsight.events WHERE source = 'replication'`);
  return rows[0].n;
}

async function waitForCount(count: number, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await streamedCount()) >= count) return;
    } catch {
      // the server is coming back
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${count} streamed events (have ${await streamedCount()})`);
    await sleep(100);
  }
}

describe('listener across a server restart, with a standby', () => {
  test('a second listener waits as a standby; both survive a restart; stopping the active one hands over; every change arrives exactly once', async () => {
    const logs = { a: [] as string[], b: [] as string[] };
    const commits = { a: 0, b: 0 };
    const lastCommitAt = { a: 0, b: 0 };
    const stops = { a: new AbortController(), b: new AbortController() };
    const run = (name: 'a' | 'b') =>
      listen(config, {
        connectionString: server.url,
        signal: stops[name].signal,
        heartbeatMs: 200,
        maxBackoffMs: 500,
        onLog: (line) => logs[name].push(line),
        onCommitted: () => {
          commits[name] += 1;
          lastCommitAt[name] = performance.now();
        },
      });
    const a = run('a');
    await bump(10);
    await waitForCount(10);
    expect(commits.a).toBeGreaterThan(0);
    const b = run('b');
    await sleep(1000);
    expect(logs.b.some((l) => l.includes('waiting as a standby'))).toBe(true);
    await bump(10);
    await waitForCount(20);
    expect(commits.b).toBe(0);

    // A crash-like stop and a start of the same cluster.
    await stopEmbeddedServer(server.baseDir, 'immediate');
    await sleep(500);
    await startEmbeddedServer({ baseDir: server.baseDir });
    await bump(10);
    await waitForCount(30);
    expect([...logs.a, ...logs.b].some((l) => l.includes('lost the connection'))).toBe(true);

    // Whichever is active now is stopped; the other takes over.
    const active = lastCommitAt.a >= lastCommitAt.b ? 'a' : 'b'; // the one that wrote the last events
    const other = active === 'a' ? 'b' : 'a';
    const before = commits[other];
    stops[active].abort();
    await (active === 'a' ? a : b);
    await bump(10);
    await waitForCount(40);
    expect(commits[other]).toBeGreaterThan(before);
    stops[other].abort();
    await Promise.all([a, b]);

    // Exactly once: 40 updates, 40 events, contiguous sequences.
    expect(await streamedCount()).toBe(40);
    const { rows } = await pool.query(`SELECT aggregate_id, array_agg(sequence ORDER BY sequence)::text AS seqs FROM hindsight.events GROUP BY 1 ORDER BY 1`);
    expect(rows.map((r) => r.seqs)).toEqual(Array(5).fill('{1,2,3,4,5,6,7,8,9}'));
  });
});
