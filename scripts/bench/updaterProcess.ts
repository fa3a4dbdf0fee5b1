/**
 * A read-model updater in a process of its own, for the benchmarks: `node
 * dist/scripts/bench/updaterProcess.js <database url> [--service]` runs the bench config's
 * read models until SIGTERM; with --service, as `hindsight run` does (the same
 * startService, with the updater and a full verify scheduled every minute, no listener).
 */
import { resolveConfig } from '../../src/config/resolve.js';
import { createUpdater } from '../../src/readmodel/updater.js';
import { startService } from '../../src/service/runService.js';
import { benchConfig } from './projections.js';

const url = process.argv[2];
if (!url) {
  process.stderr.write('usage: updaterProcess.js <database url>\n');
  process.exit(2);
}
const stop = new AbortController();
process.on('SIGTERM', () => stop.abort());
process.on('SIGINT', () => stop.abort());
const gatherMs = process.env.BENCH_GATHER_MS ? Number(process.env.BENCH_GATHER_MS) : undefined; // to compare settings by hand
const verifyPauseMs = process.env.BENCH_VERIFY_PAUSE_MS ? Number(process.env.BENCH_VERIFY_PAUSE_MS) : 0; // the scheduled check's pauseMs
if (process.argv.includes('--service')) {
  const base = benchConfig();
  const account = base.aggregates.get('account')!;
  // The same declaration, with a column map verify can compare and a check every minute.
  const config = resolveConfig({
    aggregates: [
      {
        type: 'account',
        table: 'accounts',
        key: { column: 'id', type: 'bigint' },
        columns: { balance: 'balance' },
        events: [...account.events.values()].filter((e) => e.type.startsWith('account.')),
        projector: account.projector,
        readModels: [{ name: 'account_balances', table: 'read_models.account_balances', columns: { balance: { type: 'bigint' }, credits: { type: 'integer' } } }],
        verify: { schedule: [{ cron: '* * * * *', pauseMs: verifyPauseMs }] },
      },
    ],
  });
  const service = await startService(config, { connectionString: url, only: ['project', 'verify'], updater: { gatherMs } });
  await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
  await service.stop();
} else {
  await createUpdater(benchConfig(), { connectionString: url, gatherMs }).run(stop.signal);
}
