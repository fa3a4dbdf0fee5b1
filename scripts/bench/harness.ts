import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedServer, stopEmbeddedServer } from '../../src/db/embedded/server.js';

/** Shared pieces of the benchmarks: a server, timed closed-loop runs, medians and a machine line. */

/** Sends SIGTERM to a benchmark's child process (a listener, an updater) and waits for it to exit. */
export function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

export interface BenchServer {
  url: string;
  description: string;
  /** The embedded server's folder (data/, password); undefined with DATABASE_URL. */
  baseDir?: string;
  stop(): Promise<void>;
}

/**
 * A fresh embedded server with durable settings (fsync and synchronous_commit on:
 * benchmarks measure real commits, unlike the test servers), or, with DATABASE_URL, a
 * new database of its own on that server, dropped afterwards: a benchmark never touches
 * existing data.
 */
export async function benchServer(): Promise<BenchServer> {
  if (process.env.DATABASE_URL) {
    const name = `hindsight_bench_${process.pid}`;
    const admin = new pg.Client(process.env.DATABASE_URL);
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(process.env.DATABASE_URL);
    url.pathname = `/${name}`;
    return {
      url: url.toString(),
      description: `database ${name} on DATABASE_URL's server`,
      stop: async () => {
        const cleanup = new pg.Client(process.env.DATABASE_URL);
        await cleanup.connect();
        await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await cleanup.end();
      },
    };
  }
  const baseDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hindsight-bench-'));
  const server = await startEmbeddedServer({ baseDir, fsync: true });
  const client = new pg.Client(server.url);
  await client.connect();
  const { rows } = await client.query<{ v: string; sc: string; f: string }>(
    `SELECT current_setting('server_version') AS v, current_setting('synchronous_commit') AS sc, current_setting('fsync') AS f`,
  );
  await client.end();
  const row = rows[0]!;
  return {
    url: server.url,
    baseDir,
    description: `embedded PostgreSQL ${row.v}, fsync=${row.f}, synchronous_commit=${row.sc}`,
    stop: async () => {
      await stopEmbeddedServer(baseDir);
      await fs.rm(baseDir, { recursive: true, force: true });
    },
  };
}

/** Runs `clients` loops of `operation` for `seconds` and returns completed operations per second. */
export async function closedLoop(clients: number, seconds: number, operation: (client: number, i: number) => Promise<unknown>): Promise<number> {
  const deadline = performance.now() + seconds * 1000;
  let done = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let i = 0; performance.now() < deadline; i++) {
        await operation(client, i);
        done += 1;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

export interface Stats {
  median: number;
  min: number;
  max: number;
}

export function stats(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
}

export function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export interface BenchArgs {
  seconds: number;
  runs: number;
  clients: number[];
}

/** `--seconds N --runs N --clients 1,8`; defaults are the recorded configuration. */
export function benchArgs(argv: string[]): BenchArgs {
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const seconds = Number(value('--seconds') ?? 10);
  const runs = Number(value('--runs') ?? 3);
  const clients = (value('--clients') ?? '1,8').split(',').map(Number);
  if (!(seconds > 0) || !(runs >= 1) || clients.some((c) => !(c >= 1))) {
    throw new Error('usage: npm run bench -- [--seconds N] [--runs N] [--clients 1,8]');
  }
  return { seconds, runs, clients };
}
