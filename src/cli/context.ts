import pg from 'pg';
import { chooseDatabase, type DatabaseChoice } from '../config/chooseDatabase.js';
import { loadConfig } from '../config/load.js';
import type { ResolvedConfig } from '../config/resolve.js';
import { startEmbeddedServer } from '../db/embedded/server.js';
import { redactUrl } from '../db/redactUrl.js';
import type { Hindsight } from '../hindsight.js';
import type { GlobalOptions } from './parse.js';

/** Where a command writes. The CLI is the only part of hindsight that prints. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  isTTY: boolean;
  env: Record<string, string | undefined>;
  cwd: string;
  /** Aborted on SIGINT/SIGTERM: long-running commands stop cleanly. */
  signal?: AbortSignal;
}

export interface CommandContext {
  global: GlobalOptions;
  io: CliIo;
  config(): Promise<ResolvedConfig>;
  hindsight(): Promise<Hindsight>;
  /** The database URL to use, starting the embedded server when that is the choice. */
  databaseUrl(): Promise<string>;
  /** A pool for the command's duration, closed afterwards. */
  withPool<T>(fn: (pool: pg.Pool) => Promise<T>): Promise<T>;
  /** Prints `human` normally, `json` (as one JSON document) with --json. */
  print(human: string, json: unknown): void;
  /** Progress and notes: stderr, and only on a terminal unless --json is off. */
  note(text: string): void;
}

export function createCommandContext(global: GlobalOptions, io: CliIo): CommandContext {
  let config: Promise<ResolvedConfig> | undefined;
  let url: Promise<string> | undefined;
  const loadedConfig = () => (config ??= loadConfig(global.config, io.cwd));

  const resolveUrl = async (): Promise<string> => {
    const resolved = await loadedConfig();
    const choice: DatabaseChoice = chooseDatabase({
      flagUrl: global.databaseUrl,
      embeddedFlag: global.embedded,
      envUrl: io.env.DATABASE_URL,
      configUrl: resolved.databaseUrl,
      configEmbedded: resolved.embedded,
      cwd: io.cwd,
    });
    if (choice.kind === 'url') return choice.url;
    const server = await startEmbeddedServer({ baseDir: choice.baseDir });
    io.stderr(`using the embedded PostgreSQL on 127.0.0.1:${server.port} (data in ${choice.baseDir}; stop it with \`hindsight db stop\`)\n`);
    return server.url;
  };

  const context: CommandContext = {
    global,
    io,
    config: loadedConfig,
    hindsight: async () => {
      // Imported here, not above: `db` needs none of the library.
      const { createHindsight } = await import('../hindsight.js');
      return createHindsight(await loadedConfig());
    },
    databaseUrl: () => (url ??= resolveUrl()),
    async withPool(fn) {
      const pool = new pg.Pool({ connectionString: await context.databaseUrl(), max: 4, connectionTimeoutMillis: 10_000 });
      // An idle client's error (server restart) must not crash the CLI; the next query reports it.
      pool.on('error', () => undefined);
      try {
        return await fn(pool);
      } finally {
        await pool.end();
      }
    },
    print(human, json) {
      if (global.json) io.stdout(`${redactUrl(JSON.stringify(json, null, 2))}\n`);
      else io.stdout(`${redactUrl(human)}${human.endsWith('\n') ? '' : '\n'}`);
    },
    note(text) {
      io.stderr(`${redactUrl(text)}\n`);
    },
  };
  return context;
}
