import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { startEmbeddedServer, stopEmbeddedServer } from '../../src/db/embedded/server.js';
import { backfill } from '../../src/replication/backfill.js';
import { setupReplication } from '../../src/replication/setup.js';
import { startService, type Service } from '../../src/service/runService.js';
import { migrate } from '../../src/store/migrate.js';
import { pollFor } from '../helpers/poll.js';
import { startTestServer, type TestServer } from '../helpers/testServer.js';

// Serial, on a server of its own: the test stops and starts PostgreSQL under a running
// service (listener and updater), as a restart or a crash would.

let server: TestServer;
let pool: pg.Pool;
const config = resolveConfig({
  replication: { slot: 'hs_service_restart', publication: 'hs_service_restart_legacy' },
  aggregates: [
    {
      type: 'counter',
      table: 'counters',
      key: { column: 'id', type: 'integer' },
      capture: 'listener',
      readModels: [{ name: 'counter_values', table: 'read_models.counter_values', columns: { n: { type: 'integer' } } }],
    },
  ],
} as ConfigInput);

beforeAll(async () => {
  server = await startTestServer('servicerestart');
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


interface Readiness {
  ready: boolean;
  components: Record<string, { ready: boolean; detail: string }>;
}

async function readyz(base: string): Promise<{ status: number; body: Readiness }> {
  const response = await fetch(`${base}/readyz`);
  return { status: response.status, body: (await response.json()) as Readiness };
}

describe('hindsight run across a PostgreSQL restart', () => {
  test('/readyz turns not-ready while the server is down and ready again after; the listener and updater resume; every change arrives once and reaches the read model', async () => {
    const logs: string[] = [];
    const service: Service = await startService(config, {
      connectionString: server.url,
      http: { listen: '127.0.0.1:0' },
      listener: { heartbeatMs: 200 },
      updater: { leaseTtlMs: 2000 },
      onLog: (entry) => logs.push(`${entry.component}: ${entry.message}`),
    });
    try {
      const base = service.url!;
      await pollFor('ready', async () => ((await readyz(base)).status === 200 ? true : undefined));
      for (let i = 1; i <= 5; i++) await pool.query(`UPDATE counters SET n = n + 1 WHERE id = $1`, [i]);

      await stopEmbeddedServer(server.baseDir, 'fast');
      let seen = 'no answer yet';
      const down = await pollFor(
        'not ready while the server is down',
        async () => {
          const r = await readyz(base).catch((error: unknown) => {
            seen = `/readyz did not answer: ${String(error)}`;
            throw error;
          });
          seen = `/readyz ${r.status} ${JSON.stringify(r.body)}`;
          return r.status === 503 && !r.body.components.listener!.ready ? r : undefined;
        },
        { explain: async () => `last seen: ${seen}; service log:\n${logs.join('\n')}` },
      );
      expect(down.body.components.database).toMatchObject({ ready: false });
      expect(down.body.components.listener!.detail).toMatch(/reconnecting/);
      expect((await fetch(`${base}/healthz`)).status).toBe(200); // alive all the same

      await startEmbeddedServer({ baseDir: server.baseDir });
      for (let i = 1; i <= 5; i++) await pool.query(`UPDATE counters SET n = n + 10 WHERE id = $1`, [i]);
      await pollFor('ready again', async () => ((await readyz(base)).status === 200 ? true : undefined));
      const metrics = await (await fetch(`${base}/metrics`)).text();
      const reconnecting = Number(/^hindsight_listener_reconnecting_seconds_total (\S+)$/m.exec(metrics)?.[1]);
      expect(reconnecting).toBeGreaterThan(0);

      // Exactly once: 5 opening events and 10 updates, contiguous per aggregate, and the read model has the last state.
      await pollFor('every update in the log and the read model', async () => {
        const { rows } = await pool.query(`SELECT count(*)::int AS n FROM read_models.counter_values WHERE n = 11`);
        return rows[0].n === 5 ? true : undefined;
      });
      const { rows } = await pool.query(
        `SELECT aggregate_id, count(*)::int AS events, max(sequence)::int AS last FROM hindsight.events GROUP BY 1 ORDER BY 1`,
      );
      expect(rows).toEqual(['1', '2', '3', '4', '5'].map((id) => ({ aggregate_id: id, events: 3, last: 3 })));
      expect(logs.some((l) => /^listener: lost the connection/.test(l))).toBe(true);
    } finally {
      await service.stop();
    }
    const { rows: leases } = await pool.query(`SELECT * FROM hindsight.leases`);
    expect(leases).toEqual([]);
  });
});
