/**
 * One task in a process of its own, for the memory benchmark: `node
 * dist/scripts/bench/memoryProbe.js <verify|rebuild> <database url>` runs it to the end and
 * prints its peak resident memory as JSON ({"peakRssMiB": n}), the process's own high-water
 * mark: nothing else ran in it.
 */
import { rebuildReadModel } from '../../src/readmodel/rebuild.js';
import { verify } from '../../src/verify/run.js';
import { benchConfig } from './projections.js';
import { verifyLargeConfig } from './verifyLarge.js';

const [task, url] = process.argv.slice(2);
if (!url || (task !== 'verify' && task !== 'rebuild')) {
  process.stderr.write('usage: memoryProbe.js <verify|rebuild> <database url>\n');
  process.exit(2);
}
if (task === 'verify') {
  const report = await verify(verifyLargeConfig(), { connectionString: url, record: false });
  if (report.types[0]?.outcome !== 'clean') throw new Error(`verify was ${report.types[0]?.outcome}`);
} else {
  await rebuildReadModel(benchConfig(), 'account_balances', { connectionString: url });
}
process.stdout.write(`${JSON.stringify({ peakRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`);
