/**
 * `npm run bench [-- --seconds N --runs N --clients 1,8]`: the benchmarks, run by hand,
 * never as tests. Prints progress, then a Markdown section to paste into docs/benchmarks.md.
 */
import { benchArgs, benchServer, machine } from './harness.js';
import { benchCapture, captureTable } from './capture.js';

async function main() {
  const args = benchArgs(process.argv.slice(2));
  const server = await benchServer();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  try {
    log(`server: ${server.description}`);
    const capture = await benchCapture(server.url, args, log);
    const date = new Date().toISOString().slice(0, 10);
    process.stdout.write(
      [
        `### Capture overhead (${date})`,
        '',
        `Machine: ${machine()}. Server: ${server.description}.`,
        `${args.runs} interleaved runs of ${args.seconds} s per variant and client count; median (min-max).`,
        '',
        captureTable(capture),
        '',
      ].join('\n'),
    );
  } finally {
    await server.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
