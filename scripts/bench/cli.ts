import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../../src/config/load.js';
import type { ResolvedConfig } from '../../src/config/resolve.js';
import { createHindsight } from '../../src/hindsight.js';
import { migrate } from '../../src/store/migrate.js';
import { fmt, stats, type Stats } from './harness.js';

/**
 * `hindsight history` end to end, as a user runs it: a fresh `node bin/hindsight.js`
 * process in a project folder with a `hindsight.config.ts` (loaded through jiti, importing
 * `hindsight` and `zod` from the project's node_modules), against a log of about 1,000,000
 * events, for one aggregate of 6 events. Beside it, where the time goes: Node's own start,
 * and the CLI's steps timed one by one in a child process (cliPhases.ts).
 */

const REPO = fileURLToPath(new URL('../../../', import.meta.url)); // from dist/scripts/bench/
const BIN = path.join(REPO, 'bin', 'hindsight.js');
const PHASES = fileURLToPath(new URL('./cliPhases.js', import.meta.url));

const CONFIG = `import { z } from 'zod';
import { defineConfig, defineEvent, defineProjector } from 'hindsight';

export const AccountCredited = defineEvent('account.credited', z.object({ amount: z.number().int().positive() }));
export const AccountDebited = defineEvent('account.debited', z.object({ amount: z.number().int().positive() }));

export default defineConfig({
  embedded: true,
  aggregates: [
    {
      type: 'account',
      table: 'accounts',
      key: { column: 'id', type: 'bigint' },
      columns: { owner: 'owner', balance: 'balance' },
      events: [AccountCredited, AccountDebited],
      projector: defineProjector<{ balance: number }>({
        aggregateType: 'account',
        initial: { balance: 0 },
        handlers: {
          'account.credited': (s, e) => ({ ...s, balance: s.balance + e.payload.amount }),
          'account.debited': (s, e) => ({ ...s, balance: s.balance - e.payload.amount }),
        },
      }),
    },
  ],
});
`;

export interface CliPhases {
  /** Process start to the first line of the script: Node's own start. */
  boot: number;
  /** Importing the CLI's modules up to the history command (parse, context, the command). */
  modules: number;
  parse: number;
  /** Finding and loading hindsight.config.ts (jiti, and everything the config imports). */
  config: number;
  /** Choosing the database; with `embedded: true`, finding the running embedded server. */
  database: number;
  /** runHistory: a pool, connecting, the queries, folding, formatting. */
  history: number;
}

export interface CliVariant {
  name: string;
  /** The whole `node bin/hindsight.js history ...` process, spawn to exit. */
  endToEnd: Stats;
  phases: Record<keyof CliPhases, Stats>;
  /** The phases process's end to end minus its phases: the bin shim is not in it, so this is mostly the exit. */
  rest: Stats;
}

export interface CliBench {
  events: number;
  runs: number;
  nodeStart: Stats;
  variants: CliVariant[];
  /** In one process, on a pool already connected: hs.history alone. */
  historyQuery: Stats;
  /** A new connection (password authentication included), then closed. */
  connect: Stats;
}

/**
 * `rows` legacy rows and one imported event each, written in SQL (the benchmark is about
 * reading); then account 1's six events through hs.append, a real chain at known times.
 */
async function seed(url: string, config: ResolvedConfig, rows: number, log: (line: string) => void): Promise<void> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    await client.query('DROP SCHEMA IF EXISTS hindsight CASCADE; DROP SCHEMA IF EXISTS read_models CASCADE; DROP TABLE IF EXISTS accounts');
    await migrate({ connectionString: url });
    await client.query('CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL)');
    await client.query(`INSERT INTO accounts SELECT g, 'owner ' || g, g % 1000 FROM generate_series(1, $1::int) g`, [rows]);
    const chunk = 200_000;
    for (let start = 2; start <= rows; start += chunk) {
      const end = Math.min(rows, start + chunk - 1);
      await client.query(
        `INSERT INTO hindsight.events (aggregate_type, aggregate_id, sequence, event_type, payload, metadata, source, occurred_at, hash)
         SELECT 'account', a.id::text, 1, 'accounts.imported',
                jsonb_build_object('after', jsonb_build_object('id', a.id::text, 'owner', a.owner, 'balance', a.balance::text)),
                '{"actor": "baseline import"}'::jsonb, 'import', timestamptz '2025-01-01' + a.id * interval '30 seconds', sha256(a.id::text::bytea)
         FROM accounts a WHERE a.id BETWEEN $1::bigint AND $2::bigint`,
        [start, end],
      );
      log(`  seeded ${fmt(end - 1)} events`);
    }
    await client.query(`INSERT INTO hindsight.heads SELECT 'account', id::text, 1, sha256(id::text::bytea) FROM accounts WHERE id > 1`);
    const hs = createHindsight(config);
    for (let day = 1; day <= 6; day++) {
      const type = day === 4 ? 'account.debited' : 'account.credited';
      await hs.withContext({ actor: 'ops@example.com', reason: `step ${day}` }, () =>
        hs.append(client, { aggregateType: 'account', aggregateId: 1, events: [{ type, payload: { amount: day * 10 }, occurredAt: `2026-02-0${day}T10:00:00Z` }] }),
      );
    }
    await client.query('VACUUM ANALYZE accounts');
    await client.query('VACUUM ANALYZE hindsight.events');
    await client.query('VACUUM ANALYZE hindsight.heads');
  } finally {
    await client.end();
  }
}

/**
 * A user's project folder: the config, and node_modules linking `hindsight` (this
 * checkout, built) and `zod`. With `embeddedBaseDir`, `.hindsight` links to that running
 * server, as after `hindsight db start`.
 */
async function project(embeddedBaseDir: string | undefined): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hindsight-cli-bench-'));
  await fs.chmod(dir, 0o755);
  await fs.mkdir(path.join(dir, 'node_modules'));
  await fs.symlink(REPO, path.join(dir, 'node_modules', 'hindsight'), 'dir');
  await fs.symlink(path.join(REPO, 'node_modules', 'zod'), path.join(dir, 'node_modules', 'zod'), 'dir');
  await fs.writeFile(path.join(dir, 'hindsight.config.ts'), CONFIG);
  if (embeddedBaseDir) await fs.symlink(embeddedBaseDir, path.join(dir, '.hindsight'), 'dir');
  return dir;
}

/** Runs a process to its exit; rejects on a non-zero exit. Returns its stdout and wall time in ms. */
function timed(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ ms: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const ms = performance.now() - started;
      if (code === 0) resolve({ ms, stdout });
      else reject(new Error(`bench: node ${args.join(' ')} exited ${code}:\n${stderr}`));
    });
  });
}

/**
 * Measures `runs` rounds after two warm-up rounds (the first run of a config fills jiti's
 * cache). In each round every variant runs once, end to end and then phase by phase, in
 * a rotating order.
 */
export async function benchCli(
  server: { url: string; baseDir?: string },
  log: (line: string) => void,
  options: { rows?: number; runs?: number } = {},
): Promise<CliBench> {
  const rows = options.rows ?? 1_000_000;
  const runs = options.runs ?? 20;
  const withUrl = await project(undefined);
  const withEmbedded = server.baseDir ? await project(server.baseDir) : undefined;
  const config = await loadConfig(undefined, withUrl); // the very config the CLI will load
  const bare = { PATH: process.env.PATH ?? '' };
  const variants = [
    { name: '`history account 1`, DATABASE_URL set', cwd: withUrl, env: { ...bare, DATABASE_URL: server.url }, args: ['history', 'account', '1'] },
    {
      name: '`history account 1 --from 2026-02-03T00:00:00Z --to 2026-02-05T00:00:00Z`, DATABASE_URL set',
      cwd: withUrl,
      env: { ...bare, DATABASE_URL: server.url },
      args: ['history', 'account', '1', '--from', '2026-02-03T00:00:00Z', '--to', '2026-02-05T00:00:00Z'],
    },
    ...(withEmbedded ? [{ name: '`history account 1`, `embedded: true` (the server already running)', cwd: withEmbedded, env: bare, args: ['history', 'account', '1'] }] : []),
  ];
  try {
    await seed(server.url, config, rows, log);
    const nodeStart: number[] = [];
    const samples = variants.map(() => ({ endToEnd: [] as number[], phases: [] as CliPhases[], phaseTotal: [] as number[] }));
    for (let round = -2; round < runs; round++) {
      nodeStart.push((await timed(['-e', '0'], withUrl, bare)).ms);
      for (let k = 0; k < variants.length; k++) {
        const i = (k + Math.max(round, 0)) % variants.length;
        const variant = variants[i]!;
        const whole = await timed([BIN, ...variant.args], variant.cwd, variant.env);
        const phased = await timed([PHASES, ...variant.args], variant.cwd, variant.env);
        if (round < 0) continue;
        samples[i]!.endToEnd.push(whole.ms);
        samples[i]!.phases.push(JSON.parse(phased.stdout) as CliPhases);
        samples[i]!.phaseTotal.push(phased.ms);
      }
      if (round >= 0) log(`  round ${round + 1}/${runs}: ${samples.map((s) => `${s.endToEnd.at(-1)!.toFixed(0)} ms`).join(', ')}`);
    }
    const { historyQuery, connect } = await inProcess(server.url, config);
    return {
      events: rows + 5,
      runs,
      nodeStart: stats(nodeStart.slice(2)),
      variants: variants.map((variant, i) => {
        const s = samples[i]!;
        const keys: Array<keyof CliPhases> = ['boot', 'modules', 'parse', 'config', 'database', 'history'];
        const phases = Object.fromEntries(keys.map((key) => [key, stats(s.phases.map((p) => p[key]))])) as Record<keyof CliPhases, Stats>;
        const rest = stats(s.phases.map((p, j) => s.phaseTotal[j]! - keys.reduce((sum, key) => sum + p[key], 0)));
        return { name: variant.name, endToEnd: stats(s.endToEnd), phases, rest };
      }),
      historyQuery,
      connect,
    };
  } finally {
    for (const dir of [withUrl, withEmbedded]) if (dir) await fs.rm(dir, { recursive: true, force: true });
  }
}

/** The query and the connection on their own, in this process: what no change to the CLI can remove. */
async function inProcess(url: string, config: ResolvedConfig): Promise<{ historyQuery: Stats; connect: Stats }> {
  const hs = createHindsight(config);
  const client = new pg.Client(url);
  await client.connect();
  const query: number[] = [];
  const connect: number[] = [];
  try {
    for (let i = 0; i < 25; i++) {
      const started = performance.now();
      const ledger = await hs.history(client, 'account', 1);
      query.push(performance.now() - started);
      if (ledger.entries.length !== 6) throw new Error(`bench: history returned ${ledger.entries.length} entries`);
      const other = new pg.Client(url);
      const at = performance.now();
      await other.connect();
      connect.push(performance.now() - at);
      await other.end();
    }
  } finally {
    await client.end();
  }
  return { historyQuery: stats(query.slice(5)), connect: stats(connect.slice(5)) };
}

const ms = (s: Stats) => `${s.median.toFixed(0)} ms (${s.min.toFixed(0)}-${s.max.toFixed(0)})`;

/** The Markdown rows of a CliBench. */
export function cliTable(result: CliBench): string {
  const lines = [
    '| measure | median (min-max) |',
    '| --- | --- |',
    `| \`node -e 0\`: Node's own start and exit | ${ms(result.nodeStart)} |`,
  ];
  for (const v of result.variants) {
    lines.push(
      `| **${v.name}, end to end** | **${ms(v.endToEnd)}** |`,
      `| &nbsp; phases: Node start to the first line | ${ms(v.phases.boot)} |`,
      `| &nbsp; importing the CLI's modules (parse, context, the command) | ${ms(v.phases.modules)} |`,
      `| &nbsp; parsing the arguments | ${ms(v.phases.parse)} |`,
      `| &nbsp; loading hindsight.config.ts (jiti, what the config imports) | ${ms(v.phases.config)} |`,
      `| &nbsp; choosing the database | ${ms(v.phases.database)} |`,
      `| &nbsp; the history command (connect, queries, fold, format) | ${ms(v.phases.history)} |`,
      `| &nbsp; the rest (mostly exit) | ${ms(v.rest)} |`,
    );
  }
  lines.push(
    `| hs.history alone on a connected client, in one process | ${result.historyQuery.median.toFixed(1)} ms (${result.historyQuery.min.toFixed(1)}-${result.historyQuery.max.toFixed(1)}) |`,
    `| a new connection (scram-sha-256) | ${result.connect.median.toFixed(1)} ms (${result.connect.min.toFixed(1)}-${result.connect.max.toFixed(1)}) |`,
  );
  return lines.join('\n');
}
