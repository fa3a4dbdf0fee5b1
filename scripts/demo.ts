/**
 * `npm run demo`: the main job end to end on a throwaway embedded PostgreSQL.
 *
 * A small legacy CRUD app (accounts with balances, subscriptions with a status) runs a
 * simulated February 2026 of service calls. hindsight wraps the unchanged service
 * functions, so every state change is recorded as a domain event with who did it and
 * why, in the same transaction. Then it answers the question the project exists for:
 * what happened to account 1 between 3 and 17 February, who did it and why? Then the
 * rest of the retrofit: an old admin script that bypasses the wrappers is caught by the
 * listener, a read model is built, the verifier finds a planted projector bug and says
 * why, the fixed projector verifies clean, and the cut-over gate shows what is left.
 */
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { main as cli } from '../src/cli/main.js';
import { loadConfig } from '../src/config/load.js';
import { startEmbeddedServer, stopEmbeddedServer } from '../src/db/embedded/server.js';
import { createHindsight, type Hindsight } from '../src/hindsight.js';
import { migrate } from '../src/store/migrate.js';
import { humanReport } from '../src/cli/commands/verify.js';
import type { ResolvedConfig } from '../src/config/resolve.js';
import { toSql } from '../src/db/queryable.js';
import { backfill } from '../src/replication/backfill.js';
import { runListener } from '../src/replication/listener.js';
import { setupReplication } from '../src/replication/setup.js';
import { storeTables } from '../src/store/tables.js';
import { commitCut, waitForCut } from '../src/verify/cut.js';
import { verify } from '../src/verify/run.js';
import * as legacy from './demo/legacyApp.js';

export interface DemoOutput {
  write(text: string): void;
}

export interface DemoOptions {
  /** Leave `hindsight run` with the console open on the demo's data until this aborts. */
  console?: { signal: AbortSignal; stderr: (text: string) => void; isTTY: boolean };
}

/** The example config, from dist/scripts (npm run demo) or from scripts (the demo's test). */
const CONFIG_FILE = ['../../config/hindsight.config.ts', '../config/hindsight.config.ts']
  .map((relative) => fileURLToPath(new URL(relative, import.meta.url)))
  .find((file) => existsSync(file))!;

/** A small seeded generator, so every run tells the same story. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The wrapped service functions: same signatures, now recording events at the simulated time. */
function recordedServices(hs: Hindsight, clock: { now: string }) {
  const at = () => ({ occurredAt: clock.now });
  return {
    openAccount: hs.wrap(legacy.openAccount, {
      events: (_result, id, owner) => ({
        aggregateType: 'account',
        aggregateId: id,
        expectedVersion: 'none',
        events: [{ type: 'account.opened', payload: { owner }, ...at() }],
      }),
    }),
    creditAccount: hs.wrap(legacy.creditAccount, {
      events: (_balance, id, amountCents) => ({
        aggregateType: 'account',
        aggregateId: id,
        events: [{ type: 'account.credited', payload: { amountCents }, ...at() }],
      }),
    }),
    debitAccount: hs.wrap(legacy.debitAccount, {
      events: (_balance, id, amountCents) => ({
        aggregateType: 'account',
        aggregateId: id,
        events: [{ type: 'account.debited', payload: { amountCents }, ...at() }],
      }),
    }),
    createSubscription: hs.wrap(legacy.createSubscription, {
      events: (_result, id, accountId, plan) => ({
        aggregateType: 'subscription',
        aggregateId: id,
        // a "both" type: the listener appends in commit order; the row lock orders the writers
        events: [{ type: 'subscription.created', payload: { accountId, plan }, ...at() }],
      }),
    }),
    activateSubscription: hs.wrap(legacy.activateSubscription, {
      events: (changed, id) =>
        changed ? { aggregateType: 'subscription', aggregateId: id, events: [{ type: 'subscription.activated', payload: {}, ...at() }] } : undefined,
    }),
    cancelSubscription: hs.wrap(legacy.cancelSubscription, {
      events: (changed, id) =>
        changed ? { aggregateType: 'subscription', aggregateId: id, events: [{ type: 'subscription.cancelled', payload: {}, ...at() }] } : undefined,
    }),
  };
}

const SUBSCRIPTIONS = ['9f1c2d3e-0000-4000-8000-000000000001', '9f1c2d3e-0000-4000-8000-000000000002', '9f1c2d3e-0000-4000-8000-000000000003'];

interface Tally {
  calls: number;
  refused: number;
}

/** February 2026, one day at a time: the service calls of a small fintech. */
async function simulateMonth(hs: Hindsight, pool: pg.Pool, tally: Tally): Promise<void> {
  const clock = { now: '' };
  const services = recordedServices(hs, clock);
  const rand = random(20260203);
  const call = async (when: string, context: { actor: string; reason: string }, fn: () => Promise<unknown>) => {
    clock.now = when;
    tally.calls += 1;
    try {
      await hs.withContext({ ...context, requestId: `req-${tally.calls}` }, fn);
    } catch (error) {
      if (!(error instanceof legacy.InsufficientFunds)) throw error;
      tally.refused += 1; // the legacy UPDATE and the event were rolled back together
    }
  };
  const day = (d: number, hh: number, mm: number) =>
    `2026-02-${String(d).padStart(2, '0')}T${String(hh).padStart(2, '0')}:${String(mm).padStart(2, '0')}:00Z`;

  const owners = ['Ada Lovelace', 'Grace Hopper', 'Edsger Dijkstra', 'Barbara Liskov'];
  for (const [i, owner] of owners.entries()) {
    await call(day(1, 9, i), { actor: 'onboarding-service', reason: 'signup' }, () => services.openAccount(pool, i + 1, owner));
    await call(day(1, 9, 30 + i), { actor: 'payments-service', reason: 'opening deposit' }, () =>
      services.creditAccount(pool, i + 1, 50_000 + i * 10_000),
    );
  }
  for (const [i, id] of SUBSCRIPTIONS.entries()) {
    await call(day(2, 10, i), { actor: 'web-checkout', reason: 'customer chose a plan' }, () =>
      services.createSubscription(pool, id, i + 1, i === 1 ? 'basic' : 'pro'),
    );
  }
  for (let d = 3; d <= 28; d++) {
    if (d === 4) {
      for (const id of SUBSCRIPTIONS) {
        await call(day(4, 6, 0), { actor: 'billing-bot', reason: 'first payment received' }, () => services.activateSubscription(pool, id));
      }
    }
    for (let account = 1; account <= owners.length; account++) {
      if (rand() < 0.45) {
        const amount = 500 + Math.floor(rand() * 30) * 100;
        await call(day(d, 8 + Math.floor(rand() * 10), Math.floor(rand() * 60)), { actor: 'card-processor', reason: 'card payment' }, () =>
          services.debitAccount(pool, account, amount),
        );
      }
      if (rand() < 0.2) {
        const amount = 10_000 + Math.floor(rand() * 50) * 100;
        await call(day(d, 12, Math.floor(rand() * 60)), { actor: 'payments-service', reason: 'incoming transfer' }, () =>
          services.creditAccount(pool, account, amount),
        );
      }
    }
    if (d === 9) {
      // A support agent refunds a double charge on account 1.
      await call(day(9, 15, 42), { actor: 'alice@support', reason: 'refund of double charge, ticket #4711' }, () =>
        services.creditAccount(pool, 1, 2_900),
      );
    }
    if (d === 12) {
      // Account 1 tries to pay more than it holds: the bank refuses, nothing is recorded.
      await call(day(12, 19, 5), { actor: 'card-processor', reason: 'card payment' }, () => services.debitAccount(pool, 1, 9_000_000));
    }
    if (d === 14) {
      await call(day(14, 11, 20), { actor: 'bob@support', reason: 'customer request: cancel, moving abroad' }, () =>
        services.cancelSubscription(pool, SUBSCRIPTIONS[0]!),
      );
      await call(day(14, 11, 21), { actor: 'bob@support', reason: 'pro-rata refund of cancelled subscription' }, () =>
        services.creditAccount(pool, 1, 1_450),
      );
    }
    if (d === 16) {
      await call(day(16, 3, 0), { actor: 'fee-job', reason: 'monthly account fee' }, () => services.debitAccount(pool, 1, 990));
    }
    if (d === 20) {
      // Someone runs the old admin script: no service function, no wrapper, no context.
      await legacy.adminChangePlan(pool, SUBSCRIPTIONS[1]!, 'pro');
    }
  }
}

export async function runDemo(out: DemoOutput, options: DemoOptions = {}): Promise<void> {
  const started = Date.now();
  const say = (text = '') => out.write(`${text}\n`);
  const baseDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hindsight-demo-'));
  say('hindsight demo: retrofitting event history onto a CRUD database\n');
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await stopEmbeddedServer(baseDir).catch(() => undefined);
    await fs.rm(baseDir, { recursive: true, force: true });
  };
  let stopListener = async () => undefined as void;
  try {
    const server = await startEmbeddedServer({ baseDir });
    const pool = new pg.Pool({ connectionString: server.url, max: 4 });
    try {
      const version = (await pool.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]!.v;
      say(`1. Started a throwaway embedded PostgreSQL ${version} (wal_level=logical) in ${baseDir}`);

      await pool.query(legacy.LEGACY_SCHEMA);
      say('2. Created the legacy schema: accounts (balances) and subscriptions (a status column): current state only');

      const config = await loadConfig(CONFIG_FILE);
      const applied = await migrate({ connectionString: server.url, schema: config.schema });
      say(`3. hindsight migrate: created schema "${config.schema}" (${applied.applied.join(', ')})`);

      await setupReplication(config, { connectionString: server.url });
      await backfill(config, { connectionString: server.url });
      const listening = new AbortController();
      const listener = runListener(config, { connectionString: server.url, signal: listening.signal, heartbeatMs: 500 });
      stopListener = async () => {
        listening.abort();
        await listener;
      };
      say('   hindsight replication setup, backfill and listen: subscriptions are captured "both" by the wrappers and the listener');

      const hs = createHindsight(config);
      const tally: Tally = { calls: 0, refused: 0 };
      await simulateMonth(hs, pool, tally);
      // The listener appends the subscriptions' events after its lag: wait for it to pass this point.
      await waitForCut(toSql(pool), storeTables(config.quotedSchema), config.replication.slot, await commitCut(toSql(pool), 'demo'), 30_000);
      const events = (await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM hindsight.events`)).rows[0]!.n;
      say(
        `4. Simulated February 2026: ${tally.calls} calls of the unchanged service functions through hindsight's wrapper;\n` +
          `   ${events} events recorded in the same transactions as the UPDATEs; ${tally.refused} refused call(s) rolled back with no event`,
      );

      const common = ['--config', CONFIG_FILE, '--database-url', server.url];
      const io = {
        stdout: (text: string) => out.write(text.replace(/^/gm, '   ')),
        stderr: (text: string) => out.write(text.replace(/^/gm, '   ')),
        isTTY: false,
        env: {},
        cwd: process.cwd(),
      };
      say('\n5. "What happened to account 1 between 3 and 17 February, who did it and why?"');
      say('   $ hindsight history account 1 --from 2026-02-03 --to 2026-02-17\n');
      await cli(['history', 'account', '1', '--from', '2026-02-03', '--to', '2026-02-17', ...common], io);

      say('\n6. Its state in the middle of that period:');
      say('   $ hindsight state account 1 --as-of 2026-02-10T12:00:00Z\n');
      await cli(['state', 'account', '1', '--as-of', '2026-02-10T12:00:00Z', ...common], io);

      const rows = (await pool.query<{ id: string; owner: string; balance_cents: string; status: string }>(
        'SELECT id::text, owner, balance_cents::text, status FROM accounts ORDER BY id',
      )).rows;
      let same = 0;
      for (const row of rows) {
        const projected = await hs.project(pool, 'account', row.id);
        if (projected.found && projected.state.balanceCents === Number(row.balance_cents) && projected.state.owner === row.owner) same += 1;
      }
      say(`\n7. Replaying the events gives the legacy row's balance and owner for ${same} of ${rows.length} accounts`);

      const report = await hs.audit(pool);
      say(`8. hindsight audit: ${report.aggregates} aggregates, ${report.events} events, ${report.problems.length === 0 ? 'every hash chain intact' : `${report.problems.length} broken chains`}`);

      await theRestOfTheRetrofit(config, server.url, common, io, say);
      if (options.console) {
        await stopListener(); // `hindsight run` brings its own
        say('\n14. hindsight run: the listener, the updater and the console on the demo data, until Ctrl-C:');
        say('   $ hindsight run --http 127.0.0.1:9464\n');
        const code = await cli(['run', ...common, '--http', '127.0.0.1:9464', '--log-level', 'warn'], {
          ...io,
          stderr: (text) => (text.startsWith('hindsight run:') ? io.stdout(text) : options.console!.stderr(text)),
          isTTY: options.console.isTTY,
          signal: options.console.signal,
        });
        if (code !== 0) throw new Error(`hindsight run exited ${code}`);
      }
    } finally {
      await stopListener();
      await pool.end();
    }
  } finally {
    await stop();
  }
  say(`\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s; the server is stopped and its files removed.`);
}

/** Steps 9-13: what the listener caught, a read model, verification (a planted bug, then clean) and the gate. */
async function theRestOfTheRetrofit(
  config: ResolvedConfig,
  url: string,
  common: string[],
  io: Parameters<typeof cli>[1],
  say: (text?: string) => void,
): Promise<void> {
  say('\n9. On 20 February an old admin script moved a subscription to another plan with a plain UPDATE,');
  say('   bypassing the wrappers. The listener recorded it anyway (at the time it really ran, with no actor):');
  say(`   $ hindsight history subscription ${SUBSCRIPTIONS[1]}\n`);
  await cli(['history', 'subscription', SUBSCRIPTIONS[1]!, ...common], io);

  say('\n10. The read model account_balances, built by the updater:');
  say('   $ hindsight project --once\n');
  await cli(['project', '--once', ...common], io);

  // A projector with a bug a real team could make: it forgot to handle debits.
  const account = config.aggregates.get('account')!;
  const { 'account.debited': _forgotten, ...handlers } = account.projector!.handlers;
  const buggy: ResolvedConfig = {
    ...config,
    aggregates: new Map(config.aggregates).set('account', { ...account, projector: { ...account.projector!, handlers } }),
  };
  say('\n11. Dual run: verify compares every aggregate\'s projected state with its legacy row.');
  say('    First with a planted projector bug (the account projector forgot account.debited):\n');
  const found = await verify(buggy, { connectionString: url, types: ['account'] });
  io.stdout(`${humanReport(found, 2)}\n`);

  say('\n12. The projector fixed (the one in config/hindsight.config.ts), both checks run clean:');
  say('   $ hindsight verify\n');
  await cli(['verify', ...common], io);
  say('\n   $ hindsight verify --target read-model:account_balances\n');
  await cli(['verify', '--target', 'read-model:account_balances', ...common], io);

  say('\n13. Should reads of accounts move to the read model yet? The gate says what is left:');
  say('   $ hindsight cutover status account\n');
  await cli(['cutover', 'status', 'account', ...common], io);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const unknown = process.argv.slice(2).filter((arg) => arg !== '--console');
  if (unknown.length > 0) {
    process.stderr.write(`demo: unknown option ${unknown.join(' ')}; the only one is --console (npm run demo -- --console)\n`);
    process.exit(2);
  }
  let withConsole: DemoOptions['console'];
  if (process.argv.includes('--console')) {
    // Ctrl-C ends `hindsight run`, then the demo stops its server and removes its files.
    const stop = new AbortController();
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => stop.abort());
    withConsole = { signal: stop.signal, stderr: (text: string) => void process.stderr.write(text), isTTY: Boolean(process.stderr.isTTY) };
  }
  runDemo({ write: (text) => process.stdout.write(text) }, { console: withConsole }).catch((error: unknown) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
