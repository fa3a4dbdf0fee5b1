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
