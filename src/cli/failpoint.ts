import fs from 'node:fs';
import { UsageError } from '../errors.js';

/** The listener's crash-test hook from HINDSIGHT_LISTENER_FAILPOINT, for `listen` and `run` alike. */
export function listenerFailpoint(env: Record<string, string | undefined>): ((point: string) => void) | undefined {
  return failpointFrom(env.HINDSIGHT_LISTENER_FAILPOINT, (point) => {
    // Written synchronously: a pipe write still queued would die with the process.
    fs.writeSync(2, `failpoint ${point}: killing this process\n`);
    process.kill(process.pid, 'SIGKILL');
  });
}

/**
 * Crash testing of shared verify runs: HINDSIGHT_VERIFY_FAILPOINT=chunk-taken kills the
 * process with SIGKILL right after it took its first chunk, before reporting it. Unset in normal use.
 */
export function verifyFailpoint(env: Record<string, string | undefined>): (() => void) | undefined {
  const setting = env.HINDSIGHT_VERIFY_FAILPOINT;
  if (!setting) return undefined;
  if (setting !== 'chunk-taken') throw new UsageError(`HINDSIGHT_VERIFY_FAILPOINT must be chunk-taken, got ${JSON.stringify(setting)}`);
  return () => {
    fs.writeSync(2, 'failpoint chunk-taken: killing this process\n');
    process.kill(process.pid, 'SIGKILL');
  };
}

/**
 * Crash testing: HINDSIGHT_LISTENER_FAILPOINT=<point>:<probability> kills the listener
 * with SIGKILL at that point with that probability (points: buffering,
 * committed-unacknowledged). Unset in normal use.
 */
function failpointFrom(setting: string | undefined, kill: (point: string) => void): ((point: string) => void) | undefined {
  if (!setting) return undefined;
  const [point, chance] = setting.split(':');
  const probability = Number(chance ?? '1');
  if (!['buffering', 'committed-unacknowledged'].includes(point!) || !(probability >= 0 && probability <= 1)) {
    throw new UsageError(`HINDSIGHT_LISTENER_FAILPOINT must be buffering:<0-1> or committed-unacknowledged:<0-1>, got ${JSON.stringify(setting)}`);
  }
  return (at) => {
    if (at === point && Math.random() < probability) kill(at);
  };
}
