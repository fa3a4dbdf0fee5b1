import { listenerTypes, replicationStatus } from '../replication/setup.js';
import { statusProblems } from '../replication/statusProblems.js';
import type { ReadModelState } from '../readmodel/status.js';
import { when, type PageHandler } from './context.js';
import { ledgerForm } from './forms.js';
import { badge, facts, href, html, table, type SafeHtml } from './html.js';
import type { ConsoleContext } from './context.js';

/** `/`: the declared types with their pages, a form to find an aggregate, and the listener's and updaters' health. */
export const homePage: PageHandler = async (ctx) => {
  const [database] = await ctx.sql.query<{ name: string; user: string }>(`SELECT current_database() AS name, current_user AS user`);
  const rows = [...ctx.config.aggregates.values()].map((a) => [
    html`<strong>${a.type}</strong>`,
    html`<code>${a.tableLabel}</code>`,
    a.key.map((k) => `${k.column} ${k.type.sql}`).join(', '),
    a.capture,
    a.readModels.map((m) => m.name).join(', ') || html`<span class="muted">none</span>`,
    html`<span class="links"><a href="${href('/verify', { type: a.type })}">verify runs</a>${
      a.readModels.length > 0 ? html`<a href="${href('/gate', { type: a.type })}">cut-over gate</a>` : ''
    }</span>`,
  ]);
  return {
    title: 'Overview',
    body: html`<p class="muted">Database <code>${database!.name}</code> as <code>${database!.user}</code>, hindsight's schema <code>${ctx.config.schema}</code>.</p>
<h2>Find an aggregate</h2>
${ledgerForm(ctx.config, {})}
<h2>Aggregate types</h2>
${rows.length ? table(['type', 'legacy table', 'key', 'capture', 'read models', ''], rows) : html`<p>The config declares no aggregate types.</p>`}
<h2>Listener</h2>
${await listenerSection(ctx)}
<h2>Read-model updaters</h2>
${await updaterSection(ctx)}`,
  };
};

async function listenerSection(ctx: ConsoleContext): Promise<SafeHtml> {
  const types = listenerTypes(ctx.config).map((t) => t.type);
  if (types.length === 0) return html`<p class="muted">No type is captured by the listener: the app's wrappers write every event.</p>`;
  const s = await replicationStatus(ctx.sql, ctx.config);
  const problems = statusProblems(s);
  const mb = (bytes: number | null) => (bytes === null ? '-' : `${(bytes / 1024 / 1024).toFixed(1)} MB`);
  const state = s.health !== 'ok' ? badge(`slot ${s.health}`, 'bad') : s.active ? badge('listener connected', 'ok') : badge('no listener connected', problems.length ? 'bad' : 'warn');
  return html`${problems.map((p) => html`<p class="problem">${p}</p>`)}
${facts([
  ['types', types.join(', ')],
  ['slot', html`<code>${s.slot}</code> ${state}`],
  ['confirmed position', s.confirmedLsn ?? '-'],
  ['listener checkpoint', html`${s.checkpointLsn ?? '-'}${s.checkpointAgeSeconds === null ? '' : html` <span class="muted">(written ${s.checkpointAgeSeconds.toFixed(0)} s ago)</span>`}`],
  ['lag', html`${mb(s.lagBytes)} <span class="muted">WAL written since the position the listener confirmed</span>`],
  ['WAL retained', html`${mb(s.retainedWalBytes)} <span class="muted">from the slot's restart_lsn</span>`],
  ['wal_status', s.walStatus ?? '-'],
  ['baselines pending', s.pendingBaselines.join(', ') || 'none'],
  ['staged app events waiting', `${s.staged.waiting}${s.staged.oldestSeconds === null ? '' : `, the oldest for ${s.staged.oldestSeconds.toFixed(1)} s`}`],
  ['mapped events that fell back to generic', `${s.mappingFallbacks.lastDay} in the last 24 hours, ${s.mappingFallbacks.total} in all`],
])}`;
}

const STATE_KIND: Record<ReadModelState, 'ok' | 'bad' | 'warn' | 'plain'> = { 'caught-up': 'ok', behind: 'warn', stalled: 'bad', failed: 'bad', 'never-run': 'plain' };

async function updaterSection(ctx: ConsoleContext): Promise<SafeHtml> {
  if (ctx.config.readModels.size === 0) return html`<p class="muted">The config declares no read models.</p>`;
  const status = await ctx.hs.projectStatus(ctx.pool);
  const rows = status.readModels.map((m) => [
    html`<strong>${m.readModel}</strong>`,
    m.aggregateType,
    html`<code>${m.table}</code>`,
    html`${badge(m.state, STATE_KIND[m.state])}${m.reason ? html` <span class="muted">${m.reason}</span>` : ''}`,
    m.lag.events === 0 ? 'no lag' : `${m.lag.events} events, oldest waiting ${m.lag.seconds.toFixed(1)} s`,
    m.checkpoint ? html`${m.checkpoint.eventsApplied} events applied, last write ${when(m.checkpoint.updatedAt, 'UTC')}` : html`<span class="muted">never run</span>`,
    m.lease && !m.lease.expired ? m.lease.owner : html`<span class="muted">no updater running</span>`,
  ]);
  const h = status.horizon;
  const horizon = h
    ? html`<p class="notice">Oldest open transaction holding readers back: ${h.preparedGid ? `prepared transaction "${h.preparedGid}"` : `pid ${h.pid} (${h.user ?? 'unknown user'}, ${h.state ?? 'unknown state'})`} in database ${h.database ?? '?'}, open ${h.ageSeconds.toFixed(1)} s.</p>`
    : html`<p class="muted">No open transaction is holding readers back.</p>`;
  return html`${table(['read model', 'type', 'table', 'state', 'lag', 'checkpoint', 'updated by'], rows)}${horizon}`;
}
