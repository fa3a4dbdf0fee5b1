/**
 * A read-model updater in a process of its own, for the benchmarks: `node
 * dist/scripts/bench/updaterProcess.js <database url>` runs the bench config's read models
 * until SIGTERM.
 */
import { createUpdater } from '../../src/readmodel/updater.js';
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
await createUpdater(benchConfig(), { connectionString: url, gatherMs }).run(stop.signal);
