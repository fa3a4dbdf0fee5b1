import pg from 'pg';
import { z } from 'zod';
import { createHindsight } from '../../src/hindsight.js';
import { defineEvent } from '../../src/events/defineEvent.js';
import { migrate } from '../../src/store/migrate.js';
import { closedLoop, fmt, stats, type Stats } from './harness.js';
import { migrateUnhashed } from './unhashed.js';

/**
 * Standalone appends beside emmett-postgresql's `appendToStream` (issue 12, item 2): one
 * event per call with an exact expected version, on the same server, at 1 and 8 clients,
 * interleaved in rotating order. Each client appends to its own 100 streams in turn, each
 * created by one append before timing, so every timed call has an expected version of 1 or
 * more in both stores. emmett is a development dependency of the benchmark only. A fourth
 * variant appends the same way to a store whose chained hash costs nothing (unhashed.ts):
 * the most that sealing hashes after commit could give.
 */

const STREAMS_PER_CLIENT = 100;

export interface EmmettBench {
  clients: number;
  hindsight: Stats;
  emmett: Stats;
  /** hindsight's append with no hash cost. */
  unhashed: Stats;
  /** The floor: one plain INSERT of an event-sized row, autocommitted (one round trip, one commit). */
  floor: Stats;
}

export async function benchEmmett(url: string, log: (line: string) => void, clientCounts: number[], seconds: number, rounds: number): Promise<EmmettBench[]> {
  const { getPostgreSQLEventStore } = await import('@event-driven-io/emmett-postgresql');
  await migrate({ connectionString: url });
  const unhashedSchema = await migrateUnhashed(url);
  const admin = new pg.Client(url);
  await admin.connect();
  await admin.query('DROP TABLE IF EXISTS bench_floor_events');
  await admin.query('CREATE TABLE bench_floor_events (LIKE hindsight.events INCLUDING ALL)');
  await admin.end();
  let floorSequence = 0;
  const aggregates = [{ type: 'wallet', table: 'wallets', key: { column: 'id', type: 'bigint' as const }, events: [defineEvent('wallet.credited', z.object({ amount: z.number().int() }))] }];
  const hs = createHindsight({ aggregates });
  const unhashed = createHindsight({ schema: unhashedSchema, aggregates });
  const results: EmmettBench[] = [];
  for (const clients of clientCounts) {
    const pool = new pg.Pool({ connectionString: url, max: clients });
    // emmett gets a pool of its own of the same size.
    const emmettPool = new pg.Pool({ connectionString: url, max: clients });
    const store = getPostgreSQLEventStore(url, { connectionOptions: { pooled: true, pool: emmettPool } });
    const base = clients * 1_000_000;
    const hsVersions = new Map<number, number>();
    const unhashedVersions = new Map<number, number>();
    const emVersions = new Map<string, bigint>();
    const variants = {
      floor: async (client: number, i: number) => {
        await pool.query({
          name: 'bench_floor_insert',
          text: `INSERT INTO bench_floor_events (event_id, aggregate_type, aggregate_id, sequence, event_type, schema_version, payload, metadata, hash)
                 VALUES (gen_random_uuid(), 'wallet', $1, $2, 'wallet.credited', 1, '{"amount": 1}', '{}', sha256('x'::bytea))`,
          values: [String(base + client * STREAMS_PER_CLIENT + (i % STREAMS_PER_CLIENT)), ++floorSequence],
        });
      },
      hindsight: async (client: number, i: number) => {
        const id = base + client * STREAMS_PER_CLIENT + (i % STREAMS_PER_CLIENT);
        const version = hsVersions.get(id) ?? 0;
        await hs.append(pool, { aggregateType: 'wallet', aggregateId: id, expectedVersion: version, events: [{ type: 'wallet.credited', payload: { amount: 1 } }] });
        hsVersions.set(id, version + 1);
      },
      unhashed: async (client: number, i: number) => {
        const id = base + client * STREAMS_PER_CLIENT + (i % STREAMS_PER_CLIENT);
        const version = unhashedVersions.get(id) ?? 0;
        await unhashed.append(pool, { aggregateType: 'wallet', aggregateId: id, expectedVersion: version, events: [{ type: 'wallet.credited', payload: { amount: 1 } }] });
        unhashedVersions.set(id, version + 1);
      },
      emmett: async (client: number, i: number) => {
        const stream = `wallet-${base + client * STREAMS_PER_CLIENT + (i % STREAMS_PER_CLIENT)}`;
        const version = emVersions.get(stream);
        await store.appendToStream(stream, [{ type: 'WalletCredited', data: { amount: 1 } }], version === undefined ? {} : { expectedStreamVersion: version });
        emVersions.set(stream, (version ?? 0n) + 1n);
      },
    };
    try {
      // Create every stream (and warm pools, statements and emmett's schema) before timing.
      for (const name of ['hindsight', 'emmett', 'floor', 'unhashed'] as const) {
        await Promise.all(Array.from({ length: clients }, async (_, client) => {
          for (let i = 0; i < STREAMS_PER_CLIENT; i++) await variants[name](client, i);
        }));
      }
      const samples = { hindsight: [] as number[], emmett: [] as number[], floor: [] as number[], unhashed: [] as number[] };
      for (let round = 0; round < rounds; round++) {
        const order = (['hindsight', 'emmett', 'floor', 'unhashed'] as const).map((_, k, all) => all[(k + round) % all.length]!);
        for (const name of order) {
          const rate = await closedLoop(clients, seconds, (client, i) => variants[name](client, i));
          samples[name].push(rate);
          log(`  standalone append, ${clients} client(s), round ${round + 1}, ${name}: ${fmt(rate)} appends/s`);
        }
      }
      results.push({ clients, hindsight: stats(samples.hindsight), emmett: stats(samples.emmett), floor: stats(samples.floor), unhashed: stats(samples.unhashed) });
    } finally {
      await store.close();
      await emmettPool.end().catch(() => undefined);
      await pool.end();
    }
  }
  return results;
}
