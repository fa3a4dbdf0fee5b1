import { redactUrl } from '../db/redactUrl.js';
import { isConcurrencyError, isGateClosedError, isHindsightError, isUsageError } from '../errors.js';
import { runAppend } from './commands/append.js';
import { runAudit } from './commands/audit.js';
import { runConsole } from './commands/console.js';
import { runDb } from './commands/db.js';
import { runDemoCommand } from './commands/demo.js';
import { runHistory } from './commands/history.js';
import { runMigrate } from './commands/migrate.js';
import { runProject } from './commands/project.js';
import { runRebuild } from './commands/rebuild.js';
import { runBackfill, runListen, runReplication } from './commands/replication.js';
import { runSnapshot } from './commands/snapshot.js';
import { runState } from './commands/state.js';
import { runVerify } from './commands/verify.js';
import { runCutover } from './commands/cutover.js';
import { runRun } from './commands/run.js';
import { createCommandContext, type CliIo, type CommandContext } from './context.js';
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
    return await run(createCommandContext(parsed.global, io), parsed.command);
  } catch (error) {
    return reportError(error, io, json);
  }
}

function run(ctx: CommandContext, command: Command): Promise<number> {
  switch (command.name) {
    case 'migrate':
      return runMigrate(ctx);
    case 'db':
      return runDb(ctx, command.action);
    case 'append':
      return runAppend(ctx, command);
    case 'history':
      return runHistory(ctx, command);
    case 'state':
      return runState(ctx, command);
    case 'audit':
      return runAudit(ctx, command);
    case 'snapshot':
      return runSnapshot(ctx, command);
    case 'project':
      return runProject(ctx, command);
    case 'rebuild':
      return runRebuild(ctx, command);
    case 'replication':
      return runReplication(ctx, command);
    case 'backfill':
      return runBackfill(ctx, command);
    case 'listen':
      return runListen(ctx, command);
    case 'verify':
      return runVerify(ctx, command);
    case 'cutover':
      return runCutover(ctx, command);
    case 'run':
      return runRun(ctx, command);
    case 'console':
      return runConsole(ctx, command);
    case 'demo':
      return runDemoCommand(ctx);
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
