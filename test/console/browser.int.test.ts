import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { consoleRoutes } from '../../src/console/routes.js';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { HOSTILE_ID, prepareStory, verifyStory } from '../helpers/consoleStory.js';
import { useTestDatabase } from '../helpers/database.js';

// The console in a real browser: Debian's Chromium driven by playwright-core (which never
// downloads a browser of its own). Forms, links, the stylesheet under the CSP, and no script
// from the data. HINDSIGHT_SCREENSHOTS=1 also writes the README's screenshots to docs/.

const CHROMIUM = process.env.HINDSIGHT_CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS = process.env.HINDSIGHT_SCREENSHOTS === '1';
const DOCS = path.resolve(import.meta.dirname, '../../docs');

/** The one browser global used (the test project's types have no DOM). */
interface BrowserWindow {
  getComputedStyle(element: unknown): { backgroundColor: string };
}

if (!fs.existsSync(CHROMIUM)) {
  // Never a silent pass: the run fails and says which file did not run and how to fix it.
  test('Chromium is installed', () => {
    throw new Error(
      `test/console/browser.int.test.ts did not run: no Chromium at ${CHROMIUM}. Install Debian's with \`apt-get install chromium\` ` +
        `(or set HINDSIGHT_CHROMIUM to a Chromium or Chrome binary).${process.env.CI === 'true' ? ' CI must have it: add it to the image.' : ''}`,
    );
  });
} else {
  browserTests();
}

function browserTests() {
  const db = useTestDatabase(import.meta.url);
  let server: HttpServer;
  let browser: Browser;
  let page: Page;
  let runs: Record<string, number>;
  const problems: string[] = [];

  beforeAll(async () => {
    const hs = await prepareStory(db);
    runs = await verifyStory(hs, db);
    server = await startHttpServer({ listen: '127.0.0.1:0', routes: [consoleRoutes(hs.config, { pool: db.pool })] });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // A CSP violation, a failed request or a script from the data would show up here.
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('dialog', (dialog) => {
      problems.push(`dialog: ${dialog.message()}`);
      void dialog.dismiss();
    });
  });
  beforeEach(() => {
    problems.length = 0;
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function screenshot(name: string) {
    if (SCREENSHOTS) await page.screenshot({ path: path.join(DOCS, name), fullPage: true });
  }

  /** The cells of a table's body rows, as the reader sees them. */
  async function cells(selector: string): Promise<string[][]> {
    const rows = await page.locator(`${selector} tbody tr`).all();
    return Promise.all(rows.map(async (row) => (await row.locator('td').allInnerTexts()).map((text) => text.trim())));
  }

  describe('the console in Chromium', () => {
    test('the ledger of an aggregate between two dates, found from the overview', async () => {
      await page.goto(`${server.url}/`);
      await page.selectOption('form.query select[name=type]', 'account');
      await page.fill('form.query input[name=id]', '42');
      await page.fill('form.query input[name=from]', '2026-02-03');
      await page.fill('form.query input[name=to]', '2026-02-16');
      await Promise.all([page.waitForURL(/\/aggregate\?/), page.click('form.query button')]);
      expect(await page.locator('h1').innerText()).toBe('account 42');
      const rows = await cells('table.ledger');
      expect(rows.map((r) => r[1])).toEqual(['#3', '#4', '#5']);
      expect(rows[1]).toEqual([
        '2026-02-09T15:42:00.000000+00:00',
        '#4',
        'account.credited',
        'alice@support',
        'refund of double charge, ticket #4711',
        'balanceCents: 51300→54200',
      ]);
      expect(rows[0]!.slice(3)).toEqual(['card-processor', 'card payment, Berlin', 'balanceCents: 52500→51300']);
      // The stylesheet loaded under the CSP: header cells have its background, not the default.
      expect(await page.locator('table.ledger thead th').first().evaluate((th) => (globalThis as unknown as BrowserWindow).getComputedStyle(th).backgroundColor)).toBe('rgb(238, 241, 244)');
      await screenshot('console-ledger.png');
      expect(problems).toEqual([]);
    });

    test('state as of a time, from the state form', async () => {
      await page.goto(`${server.url}/state?type=account&id=42`);
      await page.fill('form.query input[name=asOf]', '2026-02-10');
      await Promise.all([page.waitForURL(/asOf=2026-02-10/), page.click('form.query button')]);
      expect(await page.locator('h2').first().innerText()).toBe('State as of 2026-02-10T00:00:00.000000+00:00');
      expect(await cells('table.facts')).toContainEqual(['4 of 6 (later events exist)']);
      expect(await cells('table.state')).toEqual([
        ['owner', '"Dana Fischer"'],
        ['balanceCents', '54200'],
      ]);
      await screenshot('console-state.png');
      expect(problems).toEqual([]);
    });

    test('a verify run with a mismatch, both values and its explanation, from the list of runs', async () => {
      await page.goto(`${server.url}/verify?type=account`);
      const [run] = await cells('table.runs');
      expect(run!.slice(1, 4)).toEqual(['account', 'projection\nfull', 'mismatches']);
      expect(run!.slice(4, 11)).toEqual(['2', '2', '1', '1', '0', '0', '0']);
      expect(run![11]).toBe('legacy drift: 1');
      await Promise.all([page.waitForURL(new RegExp(`/verify/run\\?id=${runs.account}$`)), page.click('table.runs tbody tr a')]);
      const mismatch = page.locator('section.mismatch');
      expect(await mismatch.count()).toBe(1);
      expect(await mismatch.locator('h3').innerText()).toBe('account 7: field mismatch legacy drift');
      expect(await cells('section.mismatch table.fields')).toEqual([['balanceCents', 'balance_cents', '"152500"', '"52500"', '']]);
      expect(await mismatch.locator('ul.explanation').innerText()).toMatch(/^legacy row changed after its last event: a write path is not captured \(updated_at .+ is later than the last event's write, .+\)$/);
      await screenshot('console-verify.png');
      await Promise.all([page.waitForURL(/\/aggregate\?type=account&id=7$/), mismatch.locator('h3 a').click()]);
      expect(await cells('table.ledger')).toHaveLength(2);
      expect(problems).toEqual([]);
    });

    test('a hostile id and payload run nothing and show as text', async () => {
      await page.goto(`${server.url}/event?${new URLSearchParams({ type: 'note', id: HOSTILE_ID, sequence: '1' })}`);
      expect(await page.locator('h1').innerText()).toBe(`note ${HOSTILE_ID} #1: note.written`);
      expect(await page.locator('pre.payload').innerText()).toContain('"text": "<img src=x onerror=alert(2)>"');
      expect(await page.locator('script, img').count()).toBe(0);
      expect(problems).toEqual([]);
    });
  });
}
