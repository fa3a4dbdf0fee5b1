import type pg from 'pg';
import { z } from 'zod';
import type { ConfigInput } from '../../src/config/schema.js';
import { defineEvent } from '../../src/events/defineEvent.js';
import { createHindsight, type Hindsight } from '../../src/hindsight.js';
import { defineProjector } from '../../src/projection/defineProjector.js';
import { verify } from '../../src/verify/run.js';
import type { TestDatabase } from './database.js';

/**
 * The console's story: account 42's February (six events, three of them between 3 and 17
 * February, by different actors with reasons), account 7 changed behind hindsight's back
 * (legacy drift for verify to find), and a note whose id, payload, actor and reason are
 * all hostile HTML.
 */

export const HOSTILE_ID = '<script>alert(1)</script>';
export const HOSTILE_TEXT = '<img src=x onerror=alert(2)>';
export const HOSTILE_ACTOR = '"><script>alert(3)</script>';
export const HOSTILE_REASON = '</td></tr></table><b>bold</b>';

const Opened = defineEvent('account.opened', z.object({ owner: z.string(), balanceCents: z.number().int() }));
const Credited = defineEvent('account.credited', z.object({ amountCents: z.number().int().positive() }));
const Debited = defineEvent('account.debited', z.object({ amountCents: z.number().int().positive() }));
const NoteWritten = defineEvent('note.written', z.object({ text: z.string() }));

export function storyConfig(): ConfigInput {
  return {
    aggregates: [
      {
        type: 'account',
        table: 'accounts',
        key: { column: 'id', type: 'bigint' },
        columns: { owner: 'owner', balance_cents: 'balanceCents' },
        events: [Opened, Credited, Debited],
        projector: defineProjector<{ owner?: string; balanceCents: number }>({
          aggregateType: 'account',
          initial: { balanceCents: 0 },
          handlers: {
            'account.opened': (_s, e) => ({ owner: e.payload.owner, balanceCents: e.payload.balanceCents }),
            'account.credited': (s, e) => ({ ...s, balanceCents: s.balanceCents + e.payload.amountCents }),
            'account.debited': (s, e) => ({ ...s, balanceCents: s.balanceCents - e.payload.amountCents }),
          },
        }),
        verify: { updatedAt: 'updated_at' },
        readModels: [{ name: 'account_balances', table: 'read_models.account_balances', columns: { balance_cents: { type: 'bigint', field: 'balanceCents' }, owner: { type: 'text' } } }],
      },
      {
        type: 'note',
        table: 'notes',
        key: { column: 'id', type: 'text' },
        columns: { body: 'text' },
        events: [NoteWritten],
        projector: defineProjector<{ text?: string }>({
          aggregateType: 'note',
          initial: {},
          handlers: { 'note.written': (_s, e) => ({ text: e.payload.text }) },
        }),
      },
    ],
  };
}

/** Account 42's history: [business time, event, amount or opening balance, actor, reason]. */
export const ACCOUNT_42: ReadonlyArray<readonly [string, 'opened' | 'credited' | 'debited', number, string, string]> = [
  ['2026-01-28T10:00:00Z', 'opened', 50_000, 'onboarding@bank', 'account opened at branch 12'],
  ['2026-02-02T08:00:00Z', 'credited', 2_500, 'payroll', 'salary, January'],
  ['2026-02-05T12:30:00Z', 'debited', 1_200, 'card-processor', 'card payment, Berlin'],
  ['2026-02-09T15:42:00Z', 'credited', 2_900, 'alice@support', 'refund of double charge, ticket #4711'],
  ['2026-02-16T03:00:00Z', 'debited', 990, 'billing', 'monthly fee, February'],
  ['2026-02-20T08:00:00Z', 'credited', 10_000, 'payroll', 'salary, February'],
];

/** Migrates, creates the legacy tables, records the story through hindsight's transaction helper, and plants the drift. */
export async function prepareStory(db: TestDatabase): Promise<Hindsight> {
  const hs = createHindsight(storyConfig());
  await hs.migrate(db.url);
  await db.pool.query(`
    CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance_cents bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE notes (id text PRIMARY KEY, body text NOT NULL)`);
  const account = async (id: number, steps: typeof ACCOUNT_42, owner: string) => {
    for (const [occurredAt, kind, amount, actor, reason] of steps) {
      await hs.withContext({ actor, reason }, () =>
        hs.transaction(db.pool, async (tx) => {
          if (kind === 'opened') {
            await (tx.db as pg.ClientBase).query('INSERT INTO accounts (id, owner, balance_cents) VALUES ($1, $2, $3)', [id, owner, amount]);
            await tx.record('account', id, 'account.opened', { owner, balanceCents: amount }, { occurredAt });
          } else {
            const delta = kind === 'credited' ? amount : -amount;
            await (tx.db as pg.ClientBase).query('UPDATE accounts SET balance_cents = balance_cents + $1, updated_at = now() WHERE id = $2', [delta, id]);
            await tx.record('account', id, `account.${kind}`, { amountCents: amount }, { occurredAt });
          }
        }),
      );
    }
  };
  await account(42, ACCOUNT_42, 'Dana Fischer');
  await account(7, ACCOUNT_42.slice(0, 2), 'Sam Okafor');
  await hs.withContext({ actor: HOSTILE_ACTOR, reason: HOSTILE_REASON }, () =>
    hs.transaction(db.pool, async (tx) => {
      await (tx.db as pg.ClientBase).query('INSERT INTO notes (id, body) VALUES ($1, $2)', [HOSTILE_ID, HOSTILE_TEXT]);
      await tx.record('note', HOSTILE_ID, 'note.written', { text: HOSTILE_TEXT }, { occurredAt: '2026-02-04T09:00:00Z' });
    }),
  );
  // Behind hindsight's back: a legacy script credits account 7 and rewrites the note, recording no event.
  await db.pool.query(`UPDATE accounts SET balance_cents = balance_cents + 100000, updated_at = now() WHERE id = 7`);
  await db.pool.query(`UPDATE notes SET body = $1 WHERE id = $2`, [`${HOSTILE_TEXT}<script>alert(4)</script>`, HOSTILE_ID]);
  return hs;
}

/** A full verification of every type through the library; returns each type's run id in the history. */
export async function verifyStory(hs: Hindsight, db: TestDatabase): Promise<Record<string, number>> {
  const report = await verify(hs.config, { connectionString: db.url });
  return Object.fromEntries(report.types.map((t) => [t.aggregateType, t.historyId!]));
}
