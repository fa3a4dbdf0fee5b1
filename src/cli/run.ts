import { main } from './main.js';

// The process boundary: the only place that reads process state and sets the exit code.
const code = await main(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  isTTY: Boolean(process.stderr.isTTY),
  env: process.env,
  cwd: process.cwd(),
});
process.exitCode = code;
