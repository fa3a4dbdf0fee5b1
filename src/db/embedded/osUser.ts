import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { EmbeddedServerError } from '../../errors.js';

const exec = promisify(execFile);

export interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

const SERVER_USER = 'postgres';

/**
 * PostgreSQL refuses to run as root. When hindsight runs as root (CI does), the server
 * runs as the `postgres` OS user, created if missing; as an ordinary user it runs as
 * that user (returns undefined) and nothing is created.
 */
export async function serverOsUser(): Promise<OsUser | undefined> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const existing = await lookup(SERVER_USER);
  if (existing) return existing;
  try {
    await exec('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', SERVER_USER]);
  } catch (cause) {
    throw new EmbeddedServerError(
      `hindsight runs as root, and PostgreSQL refuses to; creating the "${SERVER_USER}" OS user to run it failed. ` +
        'Create that user, or run as an ordinary user',
      { cause },
    );
  }
  const created = await lookup(SERVER_USER);
  if (!created) throw new EmbeddedServerError(`the "${SERVER_USER}" OS user was created but cannot be found`);
  return created;
}

async function lookup(name: string): Promise<OsUser | undefined> {
  try {
    const [uid, gid] = await Promise.all([exec('id', ['-u', name]), exec('id', ['-g', name])]);
    return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return undefined;
  }
}
