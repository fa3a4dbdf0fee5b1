import { expect, test } from 'vitest';
import { runDemo } from '../../scripts/demo.js';

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
