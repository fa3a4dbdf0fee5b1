import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { pollUntil } from '../../src/db/pollUntil.js';
import { backfill } from '../../src/replication/backfill.js';
import { runListener } from '../../src/replication/listener.js';
import { setupReplication } from '../../src/replication/setup.js';
import { migrate } from '../../src/store/migrate.js';
import { useTestDatabase } from '../helpers/database.js';
import { teardownEventually } from '../helpers/replication.js';

// Serial: a replication slot is created while writers run (it waits for them).

const db = useTestDatabase(import.meta.url);
const slot = `hs_backfill_${Math.random().toString(36).slice(2, 8)}`;
const config = resolveConfig({
  replication: { slot, publication: 'hs_backfill_legacy' },
  aggregates: [{ type: 'item', table: 'items', key: { column: 'id', type: 'integer' }, capture: 'listener', columns: { qty: 'qty' } }],
} as ConfigInput);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  await migrate({ connectionString: db.url });
  await db.pool.query(`CREATE TABLE items (id int PRIMARY KEY, qty int NOT NULL)`);
  await db.pool.query(`CREATE TABLE audit (seq bigserial PRIMARY KEY, op text, id int, qty int, xid xid8 DEFAULT pg_current_xact_id())`);
  await db.pool.query(`CREATE FUNCTION audit_items() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN INSERT INTO audit (op, id, qty) VALUES ('deleted', OLD.id, NULL);
      ELSE INSERT INTO audit (op, id, qty) VALUES (CASE TG_OP WHEN 'INSERT' THEN 'inserted' ELSE 'updated' END, NEW.id, NEW.qty);
      END IF;
      RETURN NULL;
    END $$`);
  await db.pool.query(`CREATE TRIGGER audit_items AFTER INSERT OR UPDATE OR DELETE ON items FOR EACH ROW EXECUTE FUNCTION audit_items()`);
  await db.pool.query(`INSERT INTO items SELECT g, 0 FROM generate_series(1, 3000) g`);
  await setupReplication(config, { connectionString: db.url });
});

afterAll(async () => {
  await teardownEventually(db.pool, config);
});

async function write(stop: { done: boolean }, writer: number): Promise<void> {
  let n = 0;
  while (!stop.done) {
    const id = 1 + Math.floor(Math.random() * 3000);
    const roll = Math.random();
    if (roll < 0.8) await db.pool.query(`UPDATE items SET qty = qty + 1 WHERE id = $1`, [id]);
    else if (roll < 0.9) await db.pool.query(`INSERT INTO items VALUES ($1, 1)`, [10_000 + writer * 100_000 + n++]);
    else await db.pool.query(`DELETE FROM items WHERE id = $1`, [id]);
  }
}

describe('baseline backfill', () => {
  test('under concurrent writes: each change is either in the imported row or streamed after it, never both, never neither; the listener holds until the baseline commits', async () => {
    const stop = { done: false };
    const writers = [write(stop, 0), write(stop, 1)];
    // Writes committed before the backfill starts, so before its snapshot.
    expect(await pollUntil(async () => (await db.pool.query(`SELECT count(*)::int AS n FROM audit`)).rows[0].n >= 20, 30_000)).toBe(true);
    const logs: string[] = [];
    const controller = new AbortController();
    // The import's appends wait while the test holds the events table (SHARE: reads go on),
    // so the baseline is still pending when the listener starts, however fast the import.
    const gate = await db.pool.connect();
    let listening: Promise<void>;
    let filling: ReturnType<typeof backfill>;
    try {
      await gate.query('BEGIN');
      await gate.query('LOCK TABLE hindsight.events IN SHARE MODE');
      filling = backfill(config, { connectionString: db.url, batchSize: 50 });
      expect(await pollUntil(async () => (await db.pool.query(`SELECT 1 FROM hindsight.baselines WHERE status = 'pending'`)).rows.length > 0, 30_000)).toBe(true);
      // A listener started while the baseline is pending holds the stream.
      listening = runListener(config, { connectionString: db.url, signal: controller.signal, heartbeatMs: 200, onLog: (line) => logs.push(line) });
      expect(await pollUntil(async () => logs.some((line) => line.includes('holding the stream')), 30_000)).toBe(true);
      expect((await db.pool.query(`SELECT status, rows_imported::int AS n FROM hindsight.baselines`)).rows).toEqual([{ status: 'pending', n: 0 }]);
    } finally {
      await gate.query('COMMIT');
      gate.release();
    }
    const result = await filling;
    expect(result.imported[0]!.rows).toBeGreaterThan(2500);
    // Writes committed after the baseline's snapshot, which only the stream can bring.
    const afterSnapshot = `SELECT count(*)::int AS n FROM audit a, hindsight.baselines b WHERE b.aggregate_type = 'item' AND NOT pg_visible_in_snapshot(a.xid, b.snapshot)`;
    expect(await pollUntil(async () => (await db.pool.query(afterSnapshot)).rows[0].n >= 20, 30_000)).toBe(true);
    stop.done = true;
    await Promise.all(writers);

    // Wait for the listener to pass a cut marker committed after every write.
    const [{ cut }] = (await db.pool.query(`SELECT pg_logical_emit_message(true, 'hindsight.cut', 'test')::text AS cut`)).rows;
    let caughtUp = false;
    for (let i = 0; i < 400 && !caughtUp; i++) {
      const { rows } = await db.pool.query(`SELECT checkpoint_lsn >= $1::pg_lsn AS caught_up FROM hindsight.replication_state`, [cut]);
      caughtUp = rows[0].caught_up;
      if (!caughtUp) await sleep(50);
    }
    expect(caughtUp, 'the listener passed the cut marker within 20 s').toBe(true);
    controller.abort();
    await listening;

    // Which source transactions the import saw: exactly those visible in its snapshot.
    const { rows } = await db.pool.query(`
      WITH b AS (SELECT snapshot FROM hindsight.baselines WHERE aggregate_type = 'item'),
      audited AS (
        SELECT a.id::text AS id, a.op, a.qty::text AS qty, a.xid::text AS xid, pg_visible_in_snapshot(a.xid, b.snapshot) AS seen_by_import, a.seq
        FROM audit a, b
      ),
      streamed AS (
        SELECT aggregate_id AS id, replace(event_type, 'items.', '') AS op, payload->'after'->>'qty' AS qty, source_xid::text AS xid, sequence
        FROM hindsight.events WHERE aggregate_type = 'item' AND source = 'replication'
      )
      SELECT
        (SELECT count(*) FROM audited WHERE seen_by_import)::int AS before_baseline,
        (SELECT count(*) FROM audited WHERE NOT seen_by_import)::int AS after_baseline,
        (SELECT json_agg(x ORDER BY x.id::int, x.seq) FROM (SELECT id, op, qty, xid, seq FROM audited WHERE NOT seen_by_import) x)::text AS expected,
        (SELECT json_agg(x ORDER BY x.id::int, x.sequence) FROM streamed x)::text AS actual`);
    const { before_baseline, after_baseline, expected, actual } = rows[0];
    expect(before_baseline).toBeGreaterThan(0); // the backfill really ran under writes
    expect(after_baseline).toBeGreaterThan(0);
    const strip = (list: Array<Record<string, unknown>>) => list.map(({ id, op, qty, xid }) => ({ id, op, qty: op === 'deleted' ? null : qty, xid }));
    expect(strip(JSON.parse(actual ?? '[]'))).toEqual(strip(JSON.parse(expected ?? '[]')));

    // And the imported rows are the snapshot's: each aggregate's events fold to the legacy row.
    const { rows: diff } = await db.pool.query(`
      WITH folded AS (
        SELECT DISTINCT ON (aggregate_id) aggregate_id, event_type, payload
        FROM hindsight.events WHERE aggregate_type = 'item' ORDER BY aggregate_id, sequence DESC
      )
      SELECT coalesce(f.aggregate_id, i.id::text) AS id, f.event_type, i.qty
      FROM folded f FULL JOIN items i ON i.id::text = f.aggregate_id
      WHERE (f.event_type = 'items.deleted') IS DISTINCT FROM (i.id IS NULL)
         OR (i.id IS NOT NULL AND f.payload->'after'->>'qty' IS DISTINCT FROM i.qty::text)`);
    expect(diff).toEqual([]);

    // The import's and the stream's events both have time-ordered (v7) ids.
    const { rows: versions } = await db.pool.query(`SELECT DISTINCT substr(event_id::text, 15, 1) AS version FROM hindsight.events WHERE aggregate_type = 'item'`);
    expect(versions).toEqual([{ version: '7' }]);
  });

  test('a second backfill of the same slot does nothing; a new type on a streaming slot is refused with the reason', async () => {
    const again = await backfill(config, { connectionString: db.url });
    expect(again.imported).toEqual([]);
    const grown = resolveConfig({
      replication: { slot, publication: 'hs_backfill_legacy' },
      aggregates: [
        { type: 'item', table: 'items', key: { column: 'id', type: 'integer' }, capture: 'listener', columns: { qty: 'qty' } },
        { type: 'audit_row', table: 'audit', key: { column: 'seq', type: 'bigint' }, capture: 'listener' },
      ],
    } as ConfigInput);
    await expect(backfill(grown, { connectionString: db.url })).rejects.toThrow(/adding audit_row to it needs a chunked re-backfill while writes continue/);
  });
});
