import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Hindsight } from '../../src/hindsight.js';
import { useTestDatabase } from '../helpers/database.js';
import { prepareStore, readModelConfig } from '../helpers/fixtures.js';
import { runBin, scratchDir, startBin, writeTestConfig, type RunningBin } from '../helpers/cli.js';
import { pollFor } from '../helpers/poll.js';

// Serial: the updater's gap-safe reads wait for every open transaction in the cluster, and
// a real `hindsight run` process is started, scraped and stopped with signals.

const db = useTestDatabase(import.meta.url);
let hs: Hindsight;
let cwd: string;
const running: RunningBin[] = [];

beforeAll(async () => {
  hs = await prepareStore(db, readModelConfig());
  cwd = await scratchDir('run');
  await writeTestConfig(cwd, 'readModelConfig');
});

afterAll(() => {
  for (const bin of running) bin.child.kill('SIGKILL');
});

function startRun(...args: string[]): RunningBin {
  const bin = startBin(['run', '--database-url', db.url, '--http', '127.0.0.1:0', ...args], { cwd });
  running.push(bin);
  return bin;
}


/** A metric's value in Prometheus text, or undefined when the series is absent. */
function metric(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const credit = (id: number) => hs.append(db.pool, { aggregateType: 'account', aggregateId: id, events: [{ type: 'account.credited', payload: { amount: 1 } }] });

describe('hindsight run', () => {
  test('serves /healthz, /readyz and /metrics; the metrics follow the events; SIGTERM releases the leases and exits 0', async () => {
    const bin = startRun();
    const [, base] = await bin.waitForOutput(/metrics on (http:\/\/127\.0\.0\.1:\d+)\/metrics/);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const home = await fetch(`${base}/`); // the console shares the listener
    expect(home.status).toBe(200);
    expect(await home.text()).toContain('account_balances');
    const ready = await pollFor('the service to be ready', async () => {
      const response = await fetch(`${base}/readyz`);
      return response.status === 200 ? ((await response.json()) as { components: Record<string, { ready: boolean }> }) : undefined;
    });
    expect(Object.keys(ready.components).sort()).toEqual(['database', 'project']);
    expect((await fetch(`${base}/readyz`)).headers.get('content-security-policy')).toContain("default-src 'none'");

    const first = await (await fetch(`${base}/metrics`)).text(); // the first scrape finds where the log ends
    expect(metric(first, 'hindsight_component_up{component="project"}')).toBe(1);
    for (let i = 0; i < 5; i++) await credit(900 + i);
    const after = await pollFor('the metrics to count the five events and the read model to catch up', async () => {
      const text = await (await fetch(`${base}/metrics`)).text();
      const counted = metric(text, 'hindsight_events_appended_total{type="account",source="app"}') ?? 0;
      const behind = metric(text, 'hindsight_read_model_events_behind{read_model="account_balances"}');
      return counted >= 5 && behind === 0 ? text : undefined;
    });
    expect(metric(after, 'hindsight_events_appended_total{type="account",source="app"}')).toBe(5);
    expect(metric(after, 'hindsight_read_model_state{read_model="account_balances",state="caught-up"}')).toBe(1);

    const { rows: held } = await db.pool.query(`SELECT name FROM hindsight.leases ORDER BY name`);
    expect(held.length).toBeGreaterThan(0);
    bin.child.kill('SIGTERM');
    expect(await bin.exited).toBe(0);
    expect(bin.stderr()).toMatch(/"msg":"stopped"/);
    const { rows: left } = await db.pool.query(`SELECT name FROM hindsight.leases`);
    expect(left).toEqual([]);
  });

  test('a non-loopback address without a token is refused before anything starts; --only names what to run', async () => {
    const exposed = await runBin(['run', '--database-url', db.url, '--http', '0.0.0.0:0'], { cwd });
    expect(exposed.code).toBe(2);
    expect(exposed.stderr).toMatch(/^hindsight: binding 0\.0\.0\.0 \(not a loopback address\) exposes the console and metrics to the network: give --token/m);
    const nothing = await runBin(['run', '--database-url', db.url, '--only', 'listener'], { cwd });
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/run --only listener: nothing to do, no aggregate type has capture "listener" or "both"/);
    const typo = await runBin(['run', '--database-url', db.url, '--only', 'project,verfy'], { cwd });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/--only takes a comma-separated list of listener, project, verify; got "verfy"/);
  });
});
