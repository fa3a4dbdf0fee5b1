import pino from 'pino';
import { redactUrl } from '../db/redactUrl.js';
import type { ServiceLogEntry } from '../service/runService.js';
import type { CommandContext } from './context.js';

export interface ServiceLogger {
  write(entry: ServiceLogEntry): void;
}

/**
 * The service's log: pino JSON lines on stderr, one per event, or a readable line per event
 * on a terminal. Every line passes through redactUrl, so a connection string a driver
 * echoes never shows its password.
 */
export function createServiceLogger(ctx: CommandContext, level: 'debug' | 'info' | 'warn' | 'error'): ServiceLogger {
  const readable = ctx.io.isTTY && !ctx.global.json;
  const destination = {
    write(line: string) {
      const safe = redactUrl(line);
      if (!readable) {
        ctx.io.stderr(safe);
        return;
      }
      const record = JSON.parse(safe) as { time: number; level: number; component?: string; msg: string };
      const name = pino.levels.labels[record.level] ?? String(record.level);
      ctx.io.stderr(`${new Date(record.time).toISOString()} ${name.padEnd(5)} ${record.component ?? ''}: ${record.msg}\n`);
    },
  };
  const logger = pino({ level, base: { pid: process.pid } }, destination);
  return {
    write(entry) {
      logger[entry.level]({ component: entry.component }, entry.message);
    },
  };
}
