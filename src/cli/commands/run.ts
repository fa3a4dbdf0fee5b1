import { UsageError } from '../../errors.js';
import type { ResolvedConfig } from '../../config/resolve.js';
import { consoleRoutes } from '../../console/routes.js';
import type { Route } from '../../http/server.js';
import { startService, type ServiceLogEntry } from '../../service/runService.js';
import type { CommandContext } from '../context.js';
import { untilAborted } from '../untilAborted.js';
import type { Command } from '../parse.js';
import { listenerFailpoint, verifyFailpoint } from '../failpoint.js';
import { createServiceLogger, type ServiceLogger } from '../serviceLogger.js';

type RunCommand = Extract<Command, { name: 'run' }>;

/**
 * `run`: the service until SIGTERM/SIGINT, then a bounded shutdown (exit 0, or 2 when it
 * overran --shutdown-timeout). Logs are JSON lines on stderr (readable on a terminal).
 */
export async function runRun(ctx: CommandContext, command: RunCommand): Promise<number> {
  const config = await ctx.config();
  const token = command.token ?? (ctx.io.env.HINDSIGHT_HTTP_TOKEN || undefined);
  if (token !== undefined && token.trim() === '') throw new UsageError('--token must not be empty');
  const logger = createServiceLogger(ctx, command.logLevel);
  // The console's pages on the service's listener, on a pool of their own.
  return ctx.withPool(async (pool) => serve(ctx, command, logger, { config, token, routes: [consoleRoutes(config, { pool })] }));
}

async function serve(
  ctx: CommandContext,
  command: RunCommand,
  logger: ServiceLogger,
  { config, token, routes }: { config: ResolvedConfig; token: string | undefined; routes: Route[] },
): Promise<number> {
  const service = await startService(config, {
    connectionString: await ctx.databaseUrl(),
    only: command.only,
    instance: command.instance,
    http: command.http === undefined ? undefined : { listen: command.http, token, routes },
    shutdownTimeoutMs: command.shutdownTimeoutMs,
    listener: { heartbeatMs: command.heartbeatMs, failpoint: listenerFailpoint(ctx.io.env) },
    verify: { onChunkTaken: verifyFailpoint(ctx.io.env) },
    updater: { leaseTtlMs: command.leaseTtlMs },
    onLog: (entry: ServiceLogEntry) => logger.write(entry),
  });
  if (service.url) ctx.note(`hindsight run: ${service.components.join(', ')}; console on ${service.url}/, metrics on ${service.url}/metrics; stop with Ctrl-C or SIGTERM`);
  const signal = ctx.io.signal;
  const stopped = untilAborted(signal);
  const outcome = await Promise.race([stopped.then(() => 'signal' as const), service.done.then(() => 'done' as const, (error: unknown) => ({ error }))]);
  if (outcome !== 'signal' && outcome !== 'done') {
    await service.stop().catch(() => undefined);
    throw outcome.error;
  }
  logger.write({ level: 'info', component: 'service', message: 'stopping: finishing the work in hand and releasing leases' });
  await service.stop();
  await service.done.catch((error: unknown) => {
    throw error;
  });
  logger.write({ level: 'info', component: 'service', message: 'stopped' });
  return 0;
}
