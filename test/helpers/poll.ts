/**
 * Waits for a condition, never for a fixed time: asks `probe` every `everyMs` until it
 * returns a value (not undefined), and returns it. A probe that throws counts as "not yet"
 * (the server may be restarting). Past `timeoutMs` it fails, naming what it waited for and,
 * with `explain`, what it saw.
 */
export async function pollFor<T>(what: string, probe: () => Promise<T | undefined>, options: { timeoutMs?: number; everyMs?: number; explain?: () => Promise<string> } = {}): Promise<T> {
  const until = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${options.explain ? `; ${await options.explain()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 50));
  }
}
