import type { StoredRun } from '../verify/history.js';
import type { Outcome } from '../verify/report.js';
import { when, type PageHandler } from './context.js';
import { badge, href, html, table, type SafeHtml } from './html.js';
import { knownType, optional, timeZoneParam } from './input.js';

const RUNS_SHOWN = 50;

const OUTCOME_KIND: Record<Outcome, 'ok' | 'bad' | 'warn' | 'plain'> = { clean: 'ok', mismatches: 'bad', incomplete: 'warn', empty: 'plain' };

export function outcomeBadge(outcome: Outcome): SafeHtml {
  return badge(outcome, OUTCOME_KIND[outcome]);
}

/** Mismatches per class, as stored with the run's counts. */
export function classCounts(run: StoredRun): SafeHtml {
  const classes = Object.entries(run.counts.classes ?? {}).filter(([, n]) => (n ?? 0) > 0);
  if (classes.length === 0) return html`<span class="muted">-</span>`;
  return html`${classes.map(([name, n], i) => html`${i > 0 ? html`<br>` : ''}${name}: <strong>${n}</strong>`)}`;
}

/**
 * `/verify?type=`: the stored verification runs of a type (or of every type), newest first,
 * each with its counts and its mismatches per class, linking to the run's mismatches.
 */
export const verifyRunsPage: PageHandler = async (ctx, url) => {
  const type = optional(url, 'type');
  if (type !== undefined) knownType(ctx.config, type);
  const tz = timeZoneParam(url);
  const runs = await ctx.hs.verifyRuns(ctx.pool, { types: type === undefined ? undefined : [type], limit: RUNS_SHOWN });
  const num = (n: number | undefined) => n ?? 0;
  const rows = runs.map((run) => [
    html`<a href="${href('/verify/run', { id: run.id, tz: optional(url, 'tz') })}">${when(run.finishedAt, tz)}</a>`,
    run.aggregateType,
    html`${run.target}<br><span class="muted">${run.mode}</span>`,
    html`${outcomeBadge(run.outcome)}${run.reason ? html`<br><span class="muted">${run.reason}</span>` : ''}`,
    num(run.counts.rows),
    num(run.counts.compared),
    num(run.counts.matched),
    num(run.counts.mismatched),
    num(run.counts.missingInEvents),
    num(run.counts.missingInLegacy),
    num(run.counts.ignored),
    classCounts(run),
  ]);
  const types = [...ctx.config.aggregates.keys()];
  return {
    title: type === undefined ? 'Verification runs' : `Verification runs of ${type}`,
    body: html`<p class="links">${types.map((t) => (t === type ? html`<strong>${t}</strong> ` : html`<a href="${href('/verify', { type: t })}">${t}</a>`))}${
      type !== undefined ? html`<a href="/verify">all types</a>` : ''
    }${type !== undefined && ctx.config.aggregates.get(type)!.readModels.length > 0 ? html`<a href="${href('/gate', { type })}">the cut-over gate of ${type}</a>` : ''}</p>
${
  rows.length === 0
    ? html`<p class="notice">No verification run is stored${type === undefined ? '' : ` for ${type}`} yet: run <code>hindsight verify${type === undefined ? '' : ` ${type}`}</code>.</p>`
    : html`<p class="muted">The ${rows.length === RUNS_SHOWN ? `${RUNS_SHOWN} most recent runs` : 'stored runs'}, newest first; open one for its mismatches, with both values and the explanation.</p>
<div class="scroll">${table(['finished', 'type', 'target, mode', 'outcome', 'rows', 'compared', 'matched', 'mismatched', 'missing in events', 'missing in legacy', 'ignored', 'mismatches per class'], rows, 'runs')}</div>`
}`,
  };
};
