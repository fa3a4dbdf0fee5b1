import path from 'node:path';
import { embeddedBaseDir } from '../../config/chooseDatabase.js';
import { embeddedServerStatus, embeddedServerUrl, startEmbeddedServer, stopEmbeddedServer } from '../../db/embedded/server.js';
import { redactUrl } from '../../db/redactUrl.js';
import type { CommandContext } from '../context.js';

/** `db start | stop | status | url`: the embedded PostgreSQL whose data lives in ./.hindsight/. */
export async function runDb(ctx: CommandContext, action: 'start' | 'stop' | 'status' | 'url'): Promise<number> {
  const baseDir = embeddedBaseDir(ctx.io.cwd);
  const shown = path.relative(ctx.io.cwd, baseDir) || baseDir;
  const passwordHint = `the password is in ${path.join(shown, 'password')}, e.g. PGPASSWORD=$(cat ${path.join(shown, 'password')}) psql "<url>"`;
  switch (action) {
    case 'start': {
      const server = await startEmbeddedServer({ baseDir });
      ctx.print(`embedded PostgreSQL running on 127.0.0.1:${server.port} (data in ${shown}/data, log in ${shown}/postgres.log)`, {
        running: true,
        port: server.port,
        pid: server.pid,
        dataDir: path.join(baseDir, 'data'),
        url: redactUrl(server.url),
      });
      return 0;
    }
    case 'stop': {
      const stopped = await stopEmbeddedServer(baseDir);
      ctx.print(stopped ? 'embedded PostgreSQL stopped' : 'embedded PostgreSQL was not running', { stopped });
      return 0;
    }
    case 'status': {
      const status = await embeddedServerStatus(baseDir);
      const human = !status.initialised
        ? `no embedded PostgreSQL in ${shown} yet (\`hindsight db start\` creates one)`
        : status.running
          ? `embedded PostgreSQL running on 127.0.0.1:${status.port} (pid ${status.pid}, data in ${shown}/data)`
          : `embedded PostgreSQL in ${shown} is not running (\`hindsight db start\`)`;
      ctx.print(human, { ...status, dataDir: path.join(baseDir, 'data') });
      return status.running ? 0 : 1;
    }
    case 'url': {
      const status = await embeddedServerStatus(baseDir);
      if (!status.initialised) {
        ctx.note(`no embedded PostgreSQL in ${shown} yet; run \`hindsight db start\``);
        return 2;
      }
      const url = redactUrl(await embeddedServerUrl(baseDir));
      ctx.print(url, { url, running: status.running });
      ctx.note(passwordHint);
      return 0;
    }
  }
}
