import { expect, test } from 'vitest';
import { runDemo } from '../../scripts/demo.js';
import { pollFor } from '../helpers/poll.js';

// `npm run demo` is what a new user runs first: it must tell the whole story, end to end,
// on its own embedded server. Serial: it starts a PostgreSQL of its own.

test('the demo tells the whole story: history, the listener catching a bypass, a planted bug found and explained, clean runs, the gate', async () => {
  let text = '';
  await runDemo({ write: (t) => (text += t) });
  expect(text).toMatch(/2026-02-09T15:42:00\.000000\+00:00  #7  account\.credited\n\s+by alice@support: refund of double charge, ticket #4711/);
  expect(text).toMatch(/#3  subscriptions\.updated\n\s+by \(no actor recorded\)\n\s+plan: "basic" -> "pro"/);
  expect(text).toMatch(/account \(projection, full\): MISMATCHES[\s\S]*field mismatch \(projector bug\)[\s\S]*events of type account\.debited were folded without a handler/);
  expect(text).toMatch(/account \(projection, full\): CLEAN[\s\S]*subscription \(projection, full\): CLEAN/);
  expect(text).toMatch(/account \(read-model:account_balances, full\): CLEAN/);
  expect(text).toMatch(/cut-over gate to account_balances: CLOSED\n\s+\[ \] 3 consecutive clean, complete, full runs of projection spanning 7 days: 1 clean in a row/);
  expect(text).toMatch(/the server is stopped and its files removed/);
}, 120_000);

test('npm run demo -- --console leaves hindsight run with the console open on the demo data until Ctrl-C, then stops everything', async () => {
  let text = '';
  const stop = new AbortController();
  const wake = new Set<() => void>();
  const finished = runDemo(
    {
      write: (t) => {
        text += t;
        for (const w of wake) w();
      },
    },
    { console: { signal: stop.signal, stderr: () => undefined, isTTY: false } },
  );
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const match = /console on (http:\/\/127\.0\.0\.1:\d+)\//.exec(text);
      if (match) resolve(match[1]!);
    };
    wake.add(check);
    finished.then(() => reject(new Error(`the demo ended without opening the console:\n${text}`)), reject);
  });
  const ledger = await fetch(`${url}/aggregate?type=account&id=1&from=2026-02-03&to=2026-02-17`);
  expect(ledger.status).toBe(200);
  expect(await ledger.text()).toContain('refund of double charge, ticket #4711');
  // Ready once its parts are: the updater takes its lease after the URL is printed.
  await pollFor('the service to be ready', async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined), {
    explain: async () => `/readyz says ${await (await fetch(`${url}/readyz`)).text()}`,
  });
  stop.abort(); // Ctrl-C
  await finished;
  expect(text).toMatch(/the server is stopped and its files removed/);
  await expect(fetch(`${url}/healthz`)).rejects.toThrow(); // nothing is left listening
}, 180_000);
