import { consoleRoutes } from '../../console/routes.js';
import { startHttpServer } from '../../http/server.js';
import type { CommandContext } from '../context.js';
import { untilAborted } from '../untilAborted.js';
import type { Command } from '../parse.js';

/**
 * `console`: the read-only web console on its own listener, until SIGTERM/SIGINT. Loopback
 * by default; another address needs a token (--token or HINDSIGHT_HTTP_TOKEN), which is
 * never printed.
 */
export async function runConsole(ctx: CommandContext, command: Extract<Command, { name: 'console' }>): Promise<number> {
  const config = await ctx.config();
  const token = command.token ?? (ctx.io.env.HINDSIGHT_HTTP_TOKEN || undefined);
  return ctx.withPool(async (pool) => {
    const server = await startHttpServer({
      listen: command.http,
      token,
      routes: [consoleRoutes(config, { pool })],
      onError: (error, url) => ctx.note(`console: ${url.split('?')[0]} failed: ${error instanceof Error ? error.message : String(error)}`),
    });
    try {
      const how = token ? '; every request needs the token: open any page once with ?token=<the token>, or send Authorization: Bearer <the token>' : '';
      ctx.print(`console at ${server.url}/ (read-only${how}); stop with Ctrl-C or SIGTERM`, { url: `${server.url}/`, token: token !== undefined });
      await untilAborted(ctx.io.signal);
    } finally {
      await server.close();
    }
    ctx.note('console stopped');
    return 0;
  });
}
