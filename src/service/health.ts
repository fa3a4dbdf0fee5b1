import type { Sql } from '../db/queryable.js';
import { send, type Route } from '../http/server.js';
import type { ServiceMetrics } from './metrics.js';
import type { Readiness, ServiceState } from './serviceState.js';

/**
 * /healthz: the process is alive and answering (no database involved, so a restart of
 * PostgreSQL never gets a healthy process killed). /readyz: every component this process
 * runs is doing its job and the database answers; 503 with the same JSON otherwise, naming
 * what is not ready. /metrics: Prometheus text.
 */
export function serviceRoutes(state: ServiceState, sql: Sql, metrics: ServiceMetrics): Route[] {
  return [
    (_request, response, url) => {
      if (url.pathname !== '/healthz') return false;
      send(response, 200, 'application/json', `${JSON.stringify({ alive: true })}\n`);
      return true;
    },
    async (_request, response, url) => {
      if (url.pathname !== '/readyz') return false;
      const readiness = await withDatabase(state.readiness(), sql);
      send(response, readiness.ready ? 200 : 503, 'application/json', `${JSON.stringify(readiness, null, 2)}\n`);
      return true;
    },
    async (_request, response, url) => {
      if (url.pathname !== '/metrics') return false;
      send(response, 200, metrics.contentType, await metrics.render());
      return true;
    },
  ];
}

/** Adds the database itself: a `SELECT 1` answered within two seconds. */
async function withDatabase(readiness: Readiness, sql: Sql): Promise<Readiness> {
  let database: { ready: boolean; detail: string };
  try {
    await Promise.race([
      sql.query('SELECT 1'),
      new Promise((_resolve, reject) => setTimeout(() => reject(new Error('no answer within 2 s')), 2000).unref()),
    ]);
    database = { ready: true, detail: 'answering' };
  } catch (error) {
    database = { ready: false, detail: `not answering: ${error instanceof Error ? error.message : String(error)}` };
  }
  const components = { database, ...readiness.components };
  return { ready: readiness.ready && database.ready, components };
}
