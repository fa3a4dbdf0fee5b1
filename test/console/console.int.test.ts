import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { consoleRoutes } from '../../src/console/routes.js';
import { isUsageError } from '../../src/errors.js';
import type { Hindsight } from '../../src/hindsight.js';
import { CONTENT_SECURITY_POLICY, startHttpServer, type HttpServer } from '../../src/http/server.js';
import { HOSTILE_ACTOR, HOSTILE_ID, HOSTILE_REASON, HOSTILE_TEXT, prepareStory, verifyStory } from '../helpers/consoleStory.js';
import { useTestDatabase } from '../helpers/database.js';

// The console over real HTTP on a real database: what each page shows, that every value is
// escaped, that bad input is a 400 saying what was wrong, and the listener's token rules.

const db = useTestDatabase(import.meta.url);
let hs: Hindsight;
let server: HttpServer;
let runs: Record<string, number>;

beforeAll(async () => {
  hs = await prepareStory(db);
  runs = await verifyStory(hs, db);
  server = await startHttpServer({ listen: '127.0.0.1:0', routes: [consoleRoutes(hs.config, { pool: db.pool })] });
});
afterAll(async () => {
  await server?.close();
});

async function get(path: string, init: RequestInit = {}, base = server.url) {
  const response = await fetch(`${base}${path}`, { redirect: 'manual', ...init });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

const q = (params: Record<string, string>) => new URLSearchParams(params).toString();

/** No markup from data: no script or img element at all (the console has none of its own), and no stack trace. */
function expectInert(body: string) {
  expect(body).not.toMatch(/<script|<img|<b>/i);
  expect(body).not.toMatch(/\n\s+at .+:\d+:\d+/);
}

describe('the pages', () => {
  test('the overview: types, a find form, listener and updater status, a CSP, and no password', async () => {
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    expect(page.body).toContain('href="/console.css"');
    for (const text of ['<strong>account</strong>', '<strong>note</strong>', 'action="/aggregate"', 'No type is captured by the listener', 'account_balances', 'never-run']) {
      expect(page.body).toContain(text);
    }
    const password = decodeURIComponent(new URL(db.url).password);
    expect(password).not.toBe('');
    expect(page.body).not.toContain(password);
    const css = await get('/console.css');
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    const head = await fetch(`${server.url}/`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  test('the ledger between two dates: only the events in range, with who, why and the fields changed', async () => {
    const page = await get(`/aggregate?${q({ type: 'account', id: '42', from: '2026-02-03', to: '2026-02-16' })}`);
    expect(page.status).toBe(200);
    const rows = page.body.split('<tbody>')[1]!.split('</tbody>')[0]!.split('<tr>').slice(1);
    expect(rows).toHaveLength(3);
    expect(rows.map((r) => /#(\d+)</.exec(r)![1])).toEqual(['3', '4', '5']);
    expect(rows[1]).toContain('2026-02-09T15:42:00.000000+00:00');
    expect(rows[1]).toContain('alice@support');
    expect(rows[1]).toContain('refund of double charge, ticket #4711');
    expect(rows[1]).toMatch(/balanceCents<\/strong>: <code>51300<\/code><span class="arrow">→<\/span><code>54200<\/code>/);
    expect(page.body).toContain('3 events from <span class="time">2026-02-03T00:00:00.000000+00:00</span> to <span class="time">2026-02-17T00:00:00.000000+00:00</span> (exclusive)');
    expect(page.body).toContain('href="/event?type=account&amp;id=42&amp;sequence=4"');

    const berlin = await get(`/aggregate?${q({ type: 'account', id: '42', from: '2026-02-09', to: '2026-02-09', tz: 'Europe/Berlin' })}`);
    expect(berlin.body).toContain('2026-02-09T16:42:00.000000+01:00');
    expect(berlin.body).toContain('1 event from <span class="time">2026-02-09T00:00:00.000000+01:00</span>');
  });

  test('state as of a time, at a sequence, and before the first event', async () => {
    const asOf = await get(`/state?${q({ type: 'account', id: '42', asOf: '2026-02-10' })}`);
    expect(asOf.status).toBe(200);
    expect(asOf.body).toContain('State as of <span class="time">2026-02-10T00:00:00.000000+00:00</span>');
    expect(asOf.body).toContain('4 of 6 (later events exist)');
    expect(asOf.body).toMatch(/balanceCents<\/strong><\/td><td><code>54200<\/code>/);
    expect(asOf.body).toContain('<code>&quot;Dana Fischer&quot;</code>');
    const atSequence = await get(`/state?${q({ type: 'account', id: '42', atSequence: '2' })}`);
    expect(atSequence.body).toMatch(/balanceCents<\/strong><\/td><td><code>52500<\/code>/);
    const before = await get(`/state?${q({ type: 'account', id: '42', asOf: '2026-01-01' })}`);
    expect(before.status).toBe(200);
    expect(before.body).toContain('No history before <span class="time">2026-01-01T00:00:00.000000+00:00</span>');
    const none = await get(`/state?${q({ type: 'account', id: '999' })}`);
    expect(none.status).toBe(404);
    expect(none.body).toContain('account 999 has no events');
  });

  test("an event's full payload and metadata", async () => {
    const page = await get(`/event?${q({ type: 'account', id: '42', sequence: '4' })}`);
    expect(page.status).toBe(200);
    expect(page.body).toContain('account 42 #4: account.credited');
    expect(page.body).toMatch(/<pre class="payload">\{\n {2}&quot;amountCents&quot;: 2900\n\}<\/pre>/);
    expect(page.body).toContain('&quot;actor&quot;: &quot;alice@support&quot;');
    expect(page.body).toContain('&quot;reason&quot;: &quot;refund of double charge, ticket #4711&quot;');
    expect(page.body).toMatch(/hash<\/th><td><code>[0-9a-f]{64}<\/code>/);
  });

  test('verify runs with counts per class, and a run with both values of a mismatch and its explanation', async () => {
    const list = await get('/verify?type=account');
    expect(list.status).toBe(200);
    expect(list.body).toContain(`href="/verify/run?id=${runs.account}"`);
    expect(list.body).toContain('legacy drift: <strong>1</strong>');
    const run = await get(`/verify/run?id=${runs.account}`);
    expect(run.status).toBe(200);
    expect(run.body).toContain('Verification of account: mismatches');
    expect(run.body).toContain('<a href="/aggregate?type=account&amp;id=7">account 7</a>: field mismatch <span class="badge bad">legacy drift</span>');
    expect(run.body).toMatch(/balanceCents<\/strong><\/td><td><code>balance_cents<\/code><\/td><td><code>&quot;152500&quot;<\/code><\/td><td><code>&quot;52500&quot;<\/code>/);
    expect(run.body).toContain('legacy row changed after its last event: a write path is not captured');
  });

  test("the cut-over gate's checklist", async () => {
    const page = await get('/gate?type=account');
    expect(page.status).toBe(200);
    expect(page.body).toContain('Reads of account come from the legacy columns');
    expect(page.body).toContain('<span class="badge bad">CLOSED</span>');
    expect(page.body).toContain('3 consecutive clean, complete, full runs of projection spanning 7 days');
    expect(page.body).toContain('read model account_balances caught up');
  });
});

describe('nothing from the data becomes markup', () => {
  test('a hostile id, payload, actor and reason on the ledger, event and state pages', async () => {
    const ledger = await get(`/aggregate?${q({ type: 'note', id: HOSTILE_ID })}`);
    expect(ledger.status).toBe(200);
    expectInert(ledger.body);
    expect(ledger.body).toContain('<h1>note &lt;script&gt;alert(1)&lt;/script&gt;</h1>');
    expect(ledger.body).toContain('&quot;&gt;&lt;script&gt;alert(3)&lt;/script&gt;');
    expect(ledger.body).toContain('&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;b&gt;bold&lt;/b&gt;');
    expect(ledger.body).toContain('value="&lt;script&gt;alert(1)&lt;/script&gt;"');
    for (const path of [`/event?${q({ type: 'note', id: HOSTILE_ID, sequence: '1' })}`, `/state?${q({ type: 'note', id: HOSTILE_ID })}`]) {
      const page = await get(path);
      expect(page.status).toBe(200);
      expectInert(page.body);
      expect(page.body).toContain('&lt;img src=x onerror=alert(2)&gt;');
    }
    expect(HOSTILE_TEXT + HOSTILE_ACTOR + HOSTILE_REASON).toMatch(/</);
  });

  test('a hostile legacy value in a verify mismatch, and hostile parameters on an error page', async () => {
    const run = await get(`/verify/run?id=${runs.note}`);
    expectInert(run.body);
    expect(run.body).toContain('&lt;img src=x onerror=alert(2)&gt;&lt;script&gt;alert(4)&lt;/script&gt;');
    const bad = await get(`/aggregate?${q({ type: '<script>alert(5)</script>', id: '1' })}`);
    expect(bad.status).toBe(400);
    expectInert(bad.body);
    expect(bad.body).toContain('unknown aggregate type &quot;&lt;script&gt;alert(5)&lt;/script&gt;&quot;');
    const badId = await get(`/aggregate?${q({ type: 'account', id: HOSTILE_ID })}`);
    expect(badId.status).toBe(400);
    expectInert(badId.body);
    expect(badId.body).toContain('account id (id bigint): expected an integer, got &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;');
  });
});

describe('bad input is a 400 that says what was wrong', () => {
  test.each([
    ['/aggregate?type=nope&id=1', 'unknown aggregate type &quot;nope&quot;; the config declares account, note'],
    ['/aggregate?type=account', 'the parameter &quot;id&quot; is required'],
    ['/aggregate?type=account&id=42&from=2026-02-30', 'from: &quot;2026-02-30&quot; is not a real date and time'],
    ['/aggregate?type=account&id=42&from=yesterday', 'from: &quot;yesterday&quot; is not a time'],
    ['/aggregate?type=account&id=42&from=2026-02-10&to=2026-02-01', 'from (2026-02-10) must be before to (2026-02-01)'],
    ['/aggregate?type=account&id=42&tz=Mars/Olympus', 'unknown time zone &quot;Mars/Olympus&quot;'],
    ['/state?type=account&id=42&atSequence=0', 'atSequence must be a whole number from 1, got &quot;0&quot;'],
    ['/state?type=account&id=42&atSequence=9', 'account 42 is at version 6; there is no sequence 9'],
    ['/state?type=account&id=42&atSequence=2&asOf=2026-02-10', 'give asOf or atSequence, not both'],
    ['/event?type=account&id=42', 'the parameter &quot;sequence&quot; is required'],
    ['/verify?type=nope', 'unknown aggregate type &quot;nope&quot;'],
    ['/verify/run?id=x1', 'id must be a whole number from 1'],
    ['/gate?type=note', 'note has no read model to move reads to'],
  ])('%s', async (path, message) => {
    const page = await get(path);
    expect(page.status).toBe(400);
    expect(page.body).toContain('<h1>Bad request</h1>');
    expect(page.body).toContain(message);
    expectInert(page.body);
  });

  test('what is not there is a 404; a path that is not the console is left to the next route', async () => {
    const event = await get('/event?type=account&id=42&sequence=99');
    expect(event.status).toBe(404);
    expect(event.body).toContain('account 42 has no event at sequence 99 (it is at version 6)');
    expect((await get('/verify/run?id=999999')).status).toBe(404);
    const other = await get('/metrics');
    expect(other.status).toBe(404);
    expect(other.body).toBe('no page at /metrics\n');
  });
});

describe('a database that cannot answer', () => {
  test('is a 503 page with its message, and no password', async () => {
    const gone = new pg.Pool({ connectionString: db.urlFor('hs_console_no_such_database'), max: 1 });
    gone.on('error', () => undefined);
    const own = await startHttpServer({ listen: '127.0.0.1:0', routes: [consoleRoutes(hs.config, { pool: gone })] });
    try {
      const page = await get('/verify?type=account', {}, own.url);
      expect(page.status).toBe(503);
      expect(page.body).toContain('<h1>The database could not answer</h1>');
      expect(page.body).toContain('database &quot;hs_console_no_such_database&quot; does not exist');
      expect(page.body).not.toContain(decodeURIComponent(new URL(db.url).password));
      expectInert(page.body);
    } finally {
      await own.close();
      await gone.end();
    }
  });
});

describe('the token', () => {
  test('binding an address other than loopback without a token is refused', async () => {
    const refused = await startHttpServer({ listen: '0.0.0.0:0', routes: [consoleRoutes(hs.config, { pool: db.pool })] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isUsageError(refused)).toBe(true);
    expect((refused as Error).message).toMatch(/give --token \(or HINDSIGHT_HTTP_TOKEN\), or bind 127\.0\.0\.1/);
  });

  test('with a token: 401 without it, 200 with the bearer header, and a cookie set from ?token=', async () => {
    const token = 'console-test-token-0123456789';
    const open = await startHttpServer({ listen: '0.0.0.0:0', token, routes: [consoleRoutes(hs.config, { pool: db.pool })] });
    const base = open.url.replace('0.0.0.0', '127.0.0.1');
    try {
      expect((await get('/', {}, base)).status).toBe(401);
      expect((await get('/', { headers: { authorization: 'Bearer wrong' } }, base)).status).toBe(401);
      const bearer = await get('/', { headers: { authorization: `Bearer ${token}` } }, base);
      expect(bearer.status).toBe(200);
      expect(bearer.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
      expect(bearer.body).not.toContain(token);

      const visit = await get(`/aggregate?type=account&id=42&token=${token}`, {}, base);
      expect(visit.status).toBe(303);
      expect(visit.headers.get('location')).toBe('/aggregate?type=account&id=42');
      const cookie = visit.headers.get('set-cookie')!;
      expect(cookie).toMatch(/^hindsight_token=[^;]+; HttpOnly; SameSite=Strict; Path=\//);
      const withCookie = await get('/aggregate?type=account&id=42', { headers: { cookie: cookie.split(';')[0]! } }, base);
      expect(withCookie.status).toBe(200);
      expect(withCookie.body).toContain('account.credited');
      expect(withCookie.body).not.toContain(token);
    } finally {
      await open.close();
    }
  });
});

describe('a run with many mismatches', () => {
  test('shows them a hundred to a page, with links to the next and previous pages', async () => {
    // 150 legacy notes that no event ever recorded: each is "missing in events".
    await db.pool.query(`INSERT INTO notes (id, body) SELECT 'bulk-' || lpad(n::text, 3, '0'), 'imported by hand' FROM generate_series(1, 150) AS n`);
    const id = (await verifyStory(hs, db)).note!;
    const first = await get(`/verify/run?id=${id}`);
    expect(first.body).toContain('151 mismatches.');
    expect(first.body.match(/<section class="mismatch">/g)).toHaveLength(100);
    expect(first.body).toContain(`page 1 of 2: <a href="/verify/run?id=${id}&amp;page=2">next</a>`);
    const second = await get(`/verify/run?id=${id}&page=2`);
    expect(second.body.match(/<section class="mismatch">/g)).toHaveLength(51);
    expect(second.body).toContain(`<a href="/verify/run?id=${id}&amp;page=1">previous</a>`);
    expect(second.body).toContain('note bulk-150</a>: missing in events <span class="badge bad">missing event</span>');
    const past = await get(`/verify/run?id=${id}&page=3`);
    expect(past.status).toBe(404);
    expect(past.body).toContain(`run ${id} has 2 pages of mismatches, not 3`);
  });
});
