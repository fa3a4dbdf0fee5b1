/**
 * `npm run bench [-- --seconds N --runs N --clients 1,8 --only capture,projections,listener,listener-mix,verify,verify-large,emmett,scale,memory,cli,run,verify-workers,backfill]`: the
 * benchmarks, run by hand, never as tests. Prints progress on stderr, then a Markdown
 * section to paste into docs/benchmarks.md.
 */
import pg from 'pg';
import { benchArgs, benchServer, fmt, machine } from './harness.js';
import { benchCapture, captureTable, UPDATER_PAIRS, updaterTable } from './capture.js';
import { benchProjectOne, benchRebuild } from './projections.js';
import { benchStandaloneAppends, benchUpdaterLag } from './updaterLag.js';
import { benchDrain, benchListenerLag, benchReplicaIdentity } from './listener.js';
import { benchVerify, benchVerifyWorkers } from './verify.js';
import { benchCli, cliTable } from './cli.js';
import { benchBackfill } from './backfill.js';
import { benchListenerMix } from './listenerMix.js';
import { benchVerifyLarge } from './verifyLarge.js';
import { benchEmmett } from './emmett.js';
import { benchScale } from './scale.js';
import { benchMemory } from './memoryBounds.js';

async function main() {
  const argv = process.argv.slice(2);
  const args = benchArgs(argv);
  const onlyAt = argv.indexOf('--only');
  const only = new Set(onlyAt >= 0 ? (argv[onlyAt + 1] ?? '').split(',') : ['capture', 'projections', 'listener', 'verify', 'cli']);
  const server = await benchServer();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const out: string[] = [];
  const date = new Date().toISOString().slice(0, 10);
  try {
    log(`server: ${server.description}`);
    out.push(`Machine: ${machine()}. Server: ${server.description}. Date: ${date}.`, '');
    if (only.has('capture')) {
      const results = await benchCapture(server.url, args, log, { withUpdater: true });
      out.push(
        `### Capture overhead (${date})`,
        '',
        `${args.runs} interleaved runs of ${args.seconds} s per variant and client count; median (min-max).`,
        '',
        captureTable(results),
        '',
        `### Capture with the read-model updater running (${date})`,
        '',
        `B alone and B with the updater process running, in ${UPDATER_PAIRS} adjacent pairs of 3 s per client count (order alternating);`,
        'the change in B/A is B/A of the table above times the median with/alone ratio, minus B/A.',
        '',
        updaterTable(results),
        '',
      );
    }
    if (only.has('verify-workers')) {
      const result = await benchVerifyWorkers(server.url, log);
      out.push(
        `### Verify shared by workers (${date})`,
        '',
        `A full, recorded verify of ${fmt(result.rows)} aggregates (one opening event each), one run after the other.`,
        '',
        '| run | seconds | aggregates/s |',
        '| --- | --- | --- |',
        `| one process (no chunks) | ${result.single.toFixed(1)} | ${fmt(result.rows / result.single)} |`,
        ...result.workers.map((w) => `| --workers ${w.workers} | ${w.seconds.toFixed(1)} | ${fmt(result.rows / w.seconds)} |`),
        '',
      );
    }
    if (only.has('backfill')) {
      const results = await benchBackfill(server.url, log);
      const first = results[0]!;
      out.push(
        `### Backfill against a plain COPY (${date})`,
        '',
        'The baseline import of a four-column legacy table (integer key) into an empty store, beside `COPY (SELECT * ... ORDER BY id) TO STDOUT` of the same rows.',
        '',
        '| rows | COPY s | backfill s | backfill rows/s | backfill / COPY rate (target ≥ 50%) | time per row vs the smallest size | events table |',
        '| --- | --- | --- | --- | --- | --- | --- |',
        ...results.map(
          (r) =>
            `| ${fmt(r.rows)} | ${r.copySeconds.toFixed(2)} | ${r.backfillSeconds.toFixed(1)} | ${fmt(r.rows / r.backfillSeconds)} | ${((100 * r.copySeconds) / r.backfillSeconds).toFixed(1)}% | ${((r.backfillSeconds / r.rows / (first.backfillSeconds / first.rows)) * 100).toFixed(0)}% | ${fmt(r.eventsBytes / 1024 / 1024)} MiB |`,
        ),
        '',
      );
    }
    if (only.has('run')) {
      const results = await benchCapture(server.url, args, log, { withService: true });
      const runs = await scheduledRuns(server.url);
      out.push(
        `### Capture with hindsight run beside it: the updater and a full verify every minute (${date})`,
        '',
        captureTable(results),
        '',
        `B alone and B with the service process running (its updater, and a scheduled full verify of the 100,000 accounts every minute${process.env.BENCH_VERIFY_PAUSE_MS ? ` with pauseMs ${process.env.BENCH_VERIFY_PAUSE_MS}` : ''}), in ${UPDATER_PAIRS} adjacent pairs of 3 s per client count:`,
        '',
        updaterTable(results),
        '',
        `Scheduled verify runs that finished during the whole benchmark: ${runs.finished} (${runs.skipped} ticks skipped, ${runs.missed} missed while the process was paused).`,
        '',
      );
    }
    if (only.has('projections')) {
      const rebuild = await benchRebuild(server.url, log); // seeds the log the others use
      const projectOne = await benchProjectOne(server.url, log);
      const appends = await benchStandaloneAppends(server.url, log, args.clients, args.seconds);
      const lag = await benchUpdaterLag(server.url, log);
      out.push(
        `### Projections (${date})`,
        '',
        '| measure | result | target |',
        '| --- | --- | --- |',
        `| rebuild of a read model from ${fmt(rebuild.events)} events (${fmt(rebuild.aggregates)} aggregates, interleaved) | ${fmt(rebuild.rebuild.eventsPerSecond)} events/s (${rebuild.rebuild.seconds.toFixed(1)} s), median | |`,
        `| raw read of the same events, \`COPY ... TO STDOUT\` | ${fmt(rebuild.copy.rowsPerSecond)} rows/s, median | |`,
        `| rebuild / raw, median of ${rebuild.rounds} back-to-back pairs (all: ${rebuild.ratios.map((r) => `${(r * 100).toFixed(1)}%`).join(', ')}) | ${(rebuild.ratios[Math.floor(rebuild.ratios.length / 2)]! * 100).toFixed(1)}% | ≥ 50% |`,
        `| project one aggregate of ${fmt(projectOne.events)} events, cold | ${projectOne.cold.median.toFixed(1)} ms (${projectOne.cold.min.toFixed(1)}-${projectOne.cold.max.toFixed(1)}) | < 50 ms |`,
        `| the same from a snapshot | ${projectOne.fromSnapshot.median.toFixed(2)} ms (${projectOne.fromSnapshot.min.toFixed(2)}-${projectOne.fromSnapshot.max.toFixed(2)}) | < 5 ms |`,
        `| updater lag (legacy commit to read-model row) at ${lag.rate} tx/s for ${lag.seconds} s, p50 / p99 / max | ${lag.p50.toFixed(1)} / ${lag.p99.toFixed(1)} / ${lag.max.toFixed(1)} ms (${fmt(lag.samples)} row writes) | p99 < 250 ms |`,
        `| updater lag of a lone event (${lag.lone.samples} in turn, each after the previous one's row), median / max | ${lag.lone.p50.toFixed(1)} / ${lag.lone.max.toFixed(1)} ms | median < 100 ms |`,
        ...appends.map((a) => `| standalone appends with an exact expected version, ${a.clients} client(s) | ${fmt(a.rate.median)} appends/s (${fmt(a.rate.min)}-${fmt(a.rate.max)}) | reported |`),
        '',
      );
    }
    if (only.has('capture-both')) {
      const plain = await benchCapture(server.url, args, log);
      const both = await benchCapture(server.url, args, log, { both: true });
      out.push(
        `### Capture overhead, app type (${date})`,
        '',
        captureTable(plain),
        '',
        `### Capture overhead, capture "both": B stages its event, a listener process appends it (${date})`,
        '',
        captureTable(both),
        '',
      );
    }
    if (only.has('verify')) {
      const result = await benchVerify(server.url, log);
      out.push(
        `### Verify (${date})`,
        '',
        '| measure | result |',
        '| --- | --- |',
        `| \`verify\` of ${fmt(result.rows)} aggregates (one opening event each, 3 compared columns: text, numeric, timestamptz), app type | ${fmt(result.verify.rowsPerSecond)} aggregates/s (${result.verify.seconds.toFixed(1)} s) |`,
        `| reading the same rows and events in pages of 1,000 without comparing | ${fmt(result.read.rowsPerSecond)} rows/s (${result.read.seconds.toFixed(1)} s) |`,
        `| verify / read | ${((result.verify.rowsPerSecond / result.read.rowsPerSecond) * 100).toFixed(1)}% |`,
        '',
      );
    }
    if (only.has('listener-mix')) {
      const mix = await benchListenerMix(server.url, log);
      if (mix) {
        const mib = (n: number | undefined) => (n === undefined ? 'not measured' : `${n.toFixed(0)} MiB`);
        out.push(
          `### The listener under a TPC-B-like mix (${date})`,
          '',
          `pgbench, ${mix.clients} clients: each transaction updates one row in each of three captured tables (100 branches, 1,000 tellers, 100,000 accounts) and inserts one row into an uncaptured history table.`,
          '',
          '| measure | result | target |',
          '| --- | --- | --- |',
          `| load for ${mix.seconds} s with \`hindsight listen\` running | ${fmt(mix.live.loadTps)} tx/s | full rate |`,
          `| source transactions the listener appended per second during the load | ${fmt(mix.live.listenerTps)} tx/s | keeps up |`,
          `| the listener's checkpoint behind the WAL, at most (sampled every 250 ms) | ${fmt(mix.live.maxLagBytes / 1024)} KiB, ${mix.live.maxLagSeconds.toFixed(1)} s | bounded |`,
          `| drained after the load stopped | ${mix.live.drainSeconds.toFixed(1)} s | ≤ 10 s |`,
          `| the listener process's peak RSS | ${mib(mix.live.listenerPeakRssMiB)} | bounded |`,
          `| the same load with no listener running (writing the backlog below) | ${fmt(mix.backlog.loadTps)} tx/s | |`,
          `| backlog of ${fmt(mix.backlog.transactions)} transactions: bare pg-logical-replication consumer | ${fmt(mix.backlog.rawTps)} tx/s | |`,
          `| the same backlog: the listener | ${fmt(mix.backlog.listenerTps)} tx/s (${((mix.backlog.listenerTps / mix.backlog.rawTps) * 100).toFixed(1)}%) | ≥ 70% |`,
          '',
        );
      }
    }
    if (only.has('verify-large')) {
      const r = await benchVerifyLarge(server.url, log);
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const range = (xs: number[]) => `${median(xs).toFixed(1)} s (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})`;
      out.push(
        `### Verify at size (${date})`,
        '',
        `One type of ${fmt(r.rows)} aggregates with ${fmt(r.events)} events, interleaved; each run cold (CHECKPOINT, OS page cache dropped). Median (min-max) of ${r.read.length} interleaved rounds.`,
        '',
        '| measure | result | target |',
        '| --- | --- | --- |',
        `| plain read of the same legacy rows and events (pages of 1,000, payloads parsed, nothing compared) | ${range(r.read)} | |`,
        `| \`verify\`, one process | ${range(r.single)} | < 30 s |`,
        `| verify rate / plain read rate | ${((median(r.read) / median(r.single)) * 100).toFixed(1)}% | ≥ 50% |`,
        ...r.workers.map((w) => `| \`verify --workers ${w.workers}\` (a shared, recorded run) | ${w.seconds.toFixed(1)} s | |`),
        `| peak RSS of the benchmark process (seed, reads and every verify) | ${r.peakRssMiB.toFixed(0)} MiB | bounded |`,
        '',
      );
    }
    if (only.has('emmett')) {
      const results = await benchEmmett(server.url, log, args.clients, args.seconds, args.runs);
      const cell = (s: { median: number; min: number; max: number }) => `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})`;
      out.push(
        `### Standalone append beside emmett-postgresql (${date})`,
        '',
        `One event per call, exact expected version, ${args.runs} interleaved rounds of ${args.seconds} s per store and client count; appends/s, median (min-max).`,
        '',
        '| clients | hindsight `append` | emmett `appendToStream` | hindsight / emmett (target ≥ 2×) | floor: one plain autocommitted INSERT | hindsight / floor | append with no hash cost | its / emmett | its / floor |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
        ...results.map(
          (r) =>
            `| ${r.clients} | ${cell(r.hindsight)} | ${cell(r.emmett)} | ${(r.hindsight.median / r.emmett.median).toFixed(2)}× | ${cell(r.floor)} | ${((r.hindsight.median / r.floor.median) * 100).toFixed(1)}% | ${cell(r.unhashed)} | ${(r.unhashed.median / r.emmett.median).toFixed(2)}× | ${((r.unhashed.median / r.floor.median) * 100).toFixed(1)}% |`,
        ),
        '',
      );
    }
    if (only.has('scale')) {
      const sizes = (process.env.BENCH_SCALE_SIZES ?? '1000000,10000000').split(',').map(Number);
      const rows = await benchScale(server.url, log, sizes);
      const first = rows[0]!;
      const pct = (x: number, base: number) => `${((x / base) * 100).toFixed(0)}%`;
      out.push(
        `### Costs as the log grows (${date})`,
        '',
        `Aggregates of 10 events each, written interleaved; the same ${300} sampled aggregates are read at every size (latencies: median / p99 ms). Appends: new aggregates, expected version 0, 5 s each. In brackets: against the first size.`,
        '',
        '| events in the log | append/s, 1 client | append/s, 8 clients | read one aggregate | state as of a date | history of 4 days | updater lag at 500/s | updater peak RSS | events table | its indexes |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
        ...rows.map(
          (r) =>
            `| ${fmt(r.events)} | ${fmt(r.appendRate.one)} (${pct(r.appendRate.one, first.appendRate.one)}) | ${fmt(r.appendRate.eight)} (${pct(r.appendRate.eight, first.appendRate.eight)}) | ${r.read[0].toFixed(2)} / ${r.read[1].toFixed(2)} (${pct(r.read[0], first.read[0])}) | ${r.asOf[0].toFixed(2)} / ${r.asOf[1].toFixed(2)} (${pct(r.asOf[0], first.asOf[0])}) | ${r.history[0].toFixed(2)} / ${r.history[1].toFixed(2)} (${pct(r.history[0], first.history[0])}) | ${r.updater.p50.toFixed(1)} / ${r.updater.p99.toFixed(1)} (${pct(r.updater.p99, first.updater.p99)}) | ${r.updater.peakRssMiB === undefined ? 'n/a' : `${r.updater.peakRssMiB.toFixed(0)} MiB`} | ${fmt(r.tableMiB)} MiB | ${fmt(r.indexesMiB)} MiB |`,
        ),
        '',
      );
    }
    if (only.has('memory')) {
      const rows = await benchMemory(server.url, log);
      out.push(
        `### Memory at two sizes (${date})`,
        '',
        'Each task in a process of its own; peak RSS is its high-water mark (VmHWM, or the process\'s own maxRSS). The second size is 5-10 times the first: memory that grew with the work would show here.',
        '',
        '| task | sizes | peak RSS | larger / smaller |',
        '| --- | --- | --- | --- |',
        ...rows.map((r) => `| ${r.what} | ${r.sizes.join('; ')} | ${r.peakRssMiB.map((m) => `${m.toFixed(0)} MiB`).join('; ')} | ${(r.peakRssMiB.at(-1)! / r.peakRssMiB[0]!).toFixed(2)}× |`),
        '',
      );
    }
    if (only.has('listener')) {
      const drain = await benchDrain(server.url, log);
      const wide = await benchDrain(server.url, log, 2_000, 100);
      // The most sealing hashes after commit could give the drain: the same, into a store whose hash costs nothing.
      const unhashed = await benchDrain(server.url, log, 200_000, 1, { unhashed: true });
      const lag = await benchListenerLag(server.url, log);
      const identity = await benchReplicaIdentity(server.url, log);
      out.push(
        `### Listener (${date})`,
        '',
        '| measure | result | target |',
        '| --- | --- | --- |',
        `| drain a backlog of ${fmt(drain.transactions)} single-row update transactions: the listener | ${fmt(drain.listenerChangesPerSecond)} changes/s | |`,
        `| the same backlog decoded by a bare pg-logical-replication consumer (its own slot, same start) | ${fmt(drain.rawChangesPerSecond)} changes/s | |`,
        `| listener / bare consumer | ${((drain.listenerChangesPerSecond / drain.rawChangesPerSecond) * 100).toFixed(1)}% | ≥ 70% |`,
        `| the same drain into a store whose chained hash costs nothing (the ceiling of sealing after commit): the listener / a bare consumer of that backlog | ${fmt(unhashed.listenerChangesPerSecond)} / ${fmt(unhashed.rawChangesPerSecond)} changes/s (${((unhashed.listenerChangesPerSecond / unhashed.rawChangesPerSecond) * 100).toFixed(1)}%) | reported |`,
        `| drain ${fmt(wide.transactions)} transactions of ${wide.width} rows each: the listener / the bare consumer | ${fmt(wide.listenerChangesPerSecond)} / ${fmt(wide.rawChangesPerSecond)} changes/s (${((wide.listenerChangesPerSecond / wide.rawChangesPerSecond) * 100).toFixed(1)}%) | reported |`,
        `| end-to-end lag (legacy commit to event visible) at ${lag.rate} tx/s for ${lag.seconds} s, p50 / p99 / max | ${lag.p50.toFixed(1)} / ${lag.p99.toFixed(1)} / ${lag.max.toFixed(1)} ms (${fmt(lag.samples)} events) | p99 < 100 ms |`,
        `| legacy UPDATE at 1 client, replica identity default / full (median of interleaved rounds) | ${fmt(identity.updatesPerSecond.default.median)} / ${fmt(identity.updatesPerSecond.full.median)} updates/s | reported |`,
        `| WAL bytes per UPDATE, default / full | ${identity.walBytesPerUpdate.default.toFixed(0)} / ${identity.walBytesPerUpdate.full.toFixed(0)} | reported |`,
        '',
      );
    }
    if (only.has('cli')) {
      const result = await benchCli(server, log);
      out.push(
        `### CLI: a short history on a log of ${fmt(result.events)} events (${date})`,
        '',
        `A new \`node bin/hindsight.js\` process per run, hindsight.config.ts loaded through jiti; ${result.runs} rounds after 2 warm-ups, variants in rotating order.`,
        '',
        cliTable(result),
        '',
      );
    }
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await server.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});

/** What the service's scheduler did during `--only run`, from its log. */
async function scheduledRuns(url: string): Promise<{ finished: number; skipped: number; missed: number }> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    const { rows } = await client.query<{ event: string; n: string }>(`SELECT event, count(*)::text AS n FROM hindsight.schedule_log GROUP BY 1`);
    const count = (event: string) => Number(rows.find((r) => r.event === event)?.n ?? 0);
    return { finished: count('finished'), skipped: count('skipped'), missed: count('missed') };
  } finally {
    await client.end();
  }
}
