import { redactUrl } from '../db/redactUrl.js';
import { isConcurrencyError, isGateClosedError, isHindsightError, isUsageError } from '../errors.js';
import type { CliIo, CommandContext } from './context.js';
import { parseCli, type Command } from './parse.js';

export const EXIT = { OK: 0, PROBLEMS: 1, ERROR: 2 } as const;

/** Runs the CLI and returns its exit code; all output goes through `io`. */
export async function main(args: string[], io: CliIo): Promise<number> {
  let json = args.includes('--json');
  try {
    const parsed = await parseCli(args);
    if (parsed.kind === 'output') {
      io.stdout(parsed.text.endsWith('\n') ? parsed.text : `${parsed.text}\n`);
      return EXIT.OK;
    }
    json = parsed.global.json;
    const { createCommandContext } = await import('./context.js');
    return await run(createCommandContext(parsed.global, io), parsed.command);
  } catch (error) {
    return reportError(error, io, json);
  }
}

/**
 * Each command's module is imported when that command runs: a process runs one command,
 * and importing them all (the verifier, the updater, the listener...) cost every command
 * their load time, `--help` included (issue 15).
 */
async function run(ctx: CommandContext, command: Command): Promise<number> {
  switch (command.name) {
    case 'migrate':
      return (await import('./commands/migrate.js')).runMigrate(ctx);
    case 'db':
      return (await import('./commands/db.js')).runDb(ctx, command.action);
    case 'append':
      return (await import('./commands/append.js')).runAppend(ctx, command);
    case 'history':
      return (await import('./commands/history.js')).runHistory(ctx, command);
    case 'state':
      return (await import('./commands/state.js')).runState(ctx, command);
    case 'audit':
      return (await import('./commands/audit.js')).runAudit(ctx, command);
    case 'snapshot':
      return (await import('./commands/snapshot.js')).runSnapshot(ctx, command);
    case 'project':
      return (await import('./commands/project.js')).runProject(ctx, command);
    case 'rebuild':
      return (await import('./commands/rebuild.js')).runRebuild(ctx, command);
    case 'replication':
      return (await import('./commands/replication.js')).runReplication(ctx, command);
    case 'backfill':
      return (await import('./commands/replication.js')).runBackfill(ctx, command);
    case 'listen':
      return (await import('./commands/replication.js')).runListen(ctx, command);
    case 'verify':
      return (await import('./commands/verify.js')).runVerify(ctx, command);
    case 'cutover':
      return (await import('./commands/cutover.js')).runCutover(ctx, command);
    case 'run':
      return (await import('./commands/run.js')).runRun(ctx, command);
    case 'console':
      return (await import('./commands/console.js')).runConsole(ctx, command);
    case 'demo':
      return (await import('./commands/demo.js')).runDemoCommand(ctx);
  }
}

/** Prints an error (never a password) and picks the exit code: 1 for a lost append race or a closed cut-over gate, 2 otherwise. */
function reportError(error: unknown, io: CliIo, json: boolean): number {
  const code = isConcurrencyError(error) || isGateClosedError(error) ? EXIT.PROBLEMS : EXIT.ERROR;
  const message = redactUrl(error instanceof Error ? error.message : String(error));
  const kind = isHindsightError(error) ? error.code : 'HINDSIGHT_UNEXPECTED';
  const hint = isUsageError(error) ? '\nRun `hindsight --help` (or `hindsight <command> --help`) for usage.' : '';
  const unexpected = isHindsightError(error) ? '' : 'unexpected error: ';
  io.stderr(`hindsight: ${unexpected}${message}${hint}\n`);
  if (!isHindsightError(error) && io.env.HINDSIGHT_DEBUG && error instanceof Error && error.stack) {
    io.stderr(`${redactUrl(error.stack)}\n`);
  }
  if (json) io.stdout(`${JSON.stringify({ error: { code: kind, message } }, null, 2)}\n`);
  return code;
}
