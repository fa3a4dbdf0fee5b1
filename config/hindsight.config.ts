/**
 * Example hindsight config, used by `npm run demo`. Copy it to your project root as
 * hindsight.config.ts and describe your own tables.
 *
 * One declaration per aggregate type: the legacy table that holds its current state,
 * the key, the column map (legacy column -> state field), the capture mode, the domain
 * events and the projector. Generic events (<table>.imported/inserted/updated/deleted)
 * are declared automatically and fold through the column map.
 */
import { z } from 'zod';
import { defineConfig, defineEvent, defineProjector } from 'hindsight';

// ---- accounts: a balance that service calls credit and debit -------------------------

const cents = z.number().int().positive();

const AccountOpened = defineEvent('account.opened', z.object({ owner: z.string().min(1) }));
const AccountCredited = defineEvent('account.credited', z.object({ amountCents: cents }));
const AccountDebited = defineEvent('account.debited', z.object({ amountCents: cents }));

interface AccountState {
  owner?: string;
  balanceCents: number;
  status: string;
}

const accountProjector = defineProjector<AccountState>({
  aggregateType: 'account',
  version: 1,
  initial: { balanceCents: 0, status: 'open' },
  handlers: {
    'account.opened': (state, event) => ({ ...state, owner: event.payload.owner, status: 'open' }),
    'account.credited': (state, event) => ({ ...state, balanceCents: state.balanceCents + event.payload.amountCents }),
    'account.debited': (state, event) => ({ ...state, balanceCents: state.balanceCents - event.payload.amountCents }),
  },
});

// ---- subscriptions: a status that moves pending -> active -> cancelled -------------------

const SubscriptionCreated = defineEvent(
  'subscription.created',
  z.object({ accountId: z.number().int(), plan: z.enum(['basic', 'pro']) }),
);
const SubscriptionActivated = defineEvent('subscription.activated', z.object({}));
const SubscriptionCancelled = defineEvent('subscription.cancelled', z.object({}));

interface SubscriptionState {
  accountId?: number;
  plan?: string;
  status: string;
}

const subscriptionProjector = defineProjector<SubscriptionState>({
  aggregateType: 'subscription',
  initial: { status: 'pending' },
  handlers: {
    'subscription.created': (state, event) => ({ ...state, accountId: event.payload.accountId, plan: event.payload.plan }),
    'subscription.activated': (state) => ({ ...state, status: 'active' }),
    'subscription.cancelled': (state) => ({ ...state, status: 'cancelled' }),
  },
});

export default defineConfig({
  // hindsight's own tables live in this schema (default "hindsight").
  schema: 'hindsight',
  // Without --database-url or DATABASE_URL, use the embedded PostgreSQL in ./.hindsight/.
  embedded: true,
  // Every event must say who did it.
  requireActor: true,
  // The logical-replication slot and publication of the "both" type below.
  replication: { slot: 'hindsight', publication: 'hindsight_legacy' },
  aggregates: [
    {
      type: 'account',
      table: 'accounts',
      key: { column: 'id', type: 'bigint' },
      columns: { owner: 'owner', balance_cents: 'balanceCents', status: 'status' },
      capture: 'app',
      events: [AccountOpened, AccountCredited, AccountDebited],
      projector: accountProjector,
      // A table kept up to date from the projected state (hindsight project), for reads to move to.
      readModels: [
        {
          name: 'account_balances',
          table: 'read_models.account_balances',
          columns: { owner: { type: 'text' }, balance_cents: { type: 'bigint', field: 'balanceCents' } },
        },
      ],
      // Every write path sets updated_at: verify can tell a write that recorded no event.
      verify: { updatedAt: 'updated_at' },
    },
    {
      type: 'subscription',
      table: 'subscriptions',
      key: { column: 'id', type: 'uuid' },
      columns: { account_id: 'accountId', plan: 'plan', status: 'status' },
      // The wrappers record the app's events; the listener also turns changes made by code
      // that bypasses them (old admin scripts, SQL jobs) into <table>.updated events.
      capture: 'both',
      events: [SubscriptionCreated, SubscriptionActivated, SubscriptionCancelled],
      projector: subscriptionProjector,
      verify: { updatedAt: 'updated_at' },
    },
  ],
});
