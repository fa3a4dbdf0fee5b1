import type pg from 'pg';

/**
 * `pool.connect()`, safe across a server restart. pg emits 'error' on a client whose
 * connection drops, and pg-pool listens only while the client is idle in the pool: a client
 * checked out when the server goes away would throw that error out of the process. This
 * listens while the client is out, and its release hands the error back so the pool
 * discards the broken connection instead of reusing it.
 */
export function checkout(pool: pg.Pool): Promise<pg.PoolClient>;
export function checkout<C extends { release(error?: any): void }>(pool: { connect(): Promise<C> }): Promise<C>;
export async function checkout<C extends { release(error?: any): void }>(pool: { connect(): Promise<C> }): Promise<C> {
  const client = await pool.connect();
  const events = client as unknown as Partial<Pick<pg.PoolClient, 'on' | 'removeListener'>>;
  if (typeof events.on !== 'function' || typeof events.removeListener !== 'function') return client;
  let failure: Error | undefined;
  const onError = (error: Error) => {
    failure ??= error;
  };
  events.on('error', onError);
  const release = client.release.bind(client);
  client.release = ((destroy?: boolean | Error) => {
    events.removeListener!('error', onError);
    return release(destroy ?? failure);
  }) as C['release'];
  return client;
}
