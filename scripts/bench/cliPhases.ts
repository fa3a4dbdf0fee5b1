/**
 * The steps of `hindsight <args>` for a history command, timed one by one in the order
 * the CLI takes them, with the CLI's own functions. Run by cli.ts as a child process in
 * the project folder (so the config is found as the bin finds it); prints one JSON line
 * of milliseconds on stdout. Only dynamic imports: a static one would load before the
 * first timestamp.
 */
const boot = performance.now(); // since the process started

const started = performance.now();
const { parseCli } = await import('../../src/cli/parse.js');
const { createCommandContext } = await import('../../src/cli/context.js');
const { runHistory } = await import('../../src/cli/commands/history.js');
const modules = performance.now() - started;

const step = async (fn: () => Promise<unknown>): Promise<number> => {
  const at = performance.now();
  await fn();
  return performance.now() - at;
};

const args = process.argv.slice(2);
let parsed!: Awaited<ReturnType<typeof parseCli>>;
const parse = await step(async () => {
  parsed = await parseCli(args);
});
if (parsed.kind !== 'command' || parsed.command.name !== 'history') throw new Error(`cliPhases: not a history command: ${args.join(' ')}`);
const command = parsed.command;
let output = '';
const ctx = createCommandContext(parsed.global, {
  stdout: (text) => (output += text),
  stderr: () => undefined,
  isTTY: false,
  env: process.env,
  cwd: process.cwd(),
});
const config = await step(() => ctx.config());
const database = await step(() => ctx.databaseUrl());
let code = -1;
const history = await step(async () => {
  code = await runHistory(ctx, command);
});
if (code !== 0) throw new Error(`cliPhases: history exited ${code}:\n${output}`);
process.stdout.write(`${JSON.stringify({ boot, modules, parse, config, database, history })}\n`);
