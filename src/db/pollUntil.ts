import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Asks `probe` until it returns true, waiting 5 ms after the first miss and twice as long
 * after each next one (at most 100 ms), until `timeoutMs` has passed. Returns whether the
 * probe said yes. The waits of read-your-writes and of the verifier's lag cut.
 */
export async function pollUntil(probe: () => Promise<boolean>, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let pause = 5;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() >= deadline || signal?.aborted) return false;
    await sleep(Math.min(pause, Math.max(1, deadline - Date.now())));
    pause = Math.min(pause * 2, 100);
  }
}
