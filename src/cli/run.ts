import { main } from './main.js';

// The process boundary: the only place that reads process state, handles signals and
// sets the exit code. SIGINT/SIGTERM ask long-running commands to stop cleanly; a second
// one exits at once.
const stop = new AbortController();
for (const name of ['SIGINT', 'SIGTERM'] as const) {
  process.on(name, () => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort();
  });
}
const code = await main(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  isTTY: Boolean(process.stderr.isTTY),
  env: process.env,
  cwd: process.cwd(),
  signal: stop.signal,
});
process.exitCode = code;
