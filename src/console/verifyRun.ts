import { NotFoundError } from '../errors.js';
import { storedMismatches, storedRun } from '../verify/history.js';
import type { FieldDifference, Mismatch } from '../verify/report.js';
import { when, type PageHandler } from './context.js';
import { facts, href, html, table, type SafeHtml } from './html.js';
import { optional, required, timeZoneParam, wholeNumberParam } from './input.js';
import { classCounts, outcomeBadge } from './verifyRuns.js';

const MISMATCHES_PER_PAGE = 100;

/**
 * `/verify/run?id=&page=`: one stored run of one type: its counts, its mismatches per class
 * and per field, and every mismatch with the legacy and projected values and the
 * explanation, a hundred to a page.
 */
export const verifyRunPage: PageHandler = async (ctx, url) => {
  required(url, 'id', 'the id of a stored run (see /verify)');
  const id = wholeNumberParam(url, 'id')!;
  const page = wholeNumberParam(url, 'page') ?? 1;
  const tz = timeZoneParam(url);
  const shownTz = optional(url, 'tz');
  const run = await storedRun(ctx.sql, ctx.tables, id);
  if (!run) throw new NotFoundError(`no verification run is stored with id ${id}`);
  const { total, mismatches } = await storedMismatches(ctx.sql, ctx.tables, id, { limit: MISMATCHES_PER_PAGE, offset: (page - 1) * MISMATCHES_PER_PAGE });
  const pages = Math.max(1, Math.ceil(total / MISMATCHES_PER_PAGE));
  if (page > pages) throw new NotFoundError(`run ${id} has ${pages === 1 ? 'one page' : `${pages} pages`} of mismatches, not ${page}`);
  const fields = Object.entries(run.counts.fields ?? {});
  const pager =
    pages > 1
      ? html`<p class="links">page ${page} of ${pages}: ${page > 1 ? html`<a href="${href('/verify/run', { id, page: page - 1, tz: shownTz })}">previous</a>` : ''}${
          page < pages ? html`<a href="${href('/verify/run', { id, page: page + 1, tz: shownTz })}">next</a>` : ''
        }</p>`
      : '';
  const c = run.counts;
  return {
    title: `Verification of ${run.aggregateType}: ${run.outcome}`,
    body: html`<p class="links"><a href="${href('/verify', { type: run.aggregateType, tz: shownTz })}">all runs of ${run.aggregateType}</a></p>
${facts([
  ['outcome', html`${outcomeBadge(run.outcome)}${run.reason ? html` ${run.reason}` : ''}`],
  ['target', run.target === 'projection' ? 'projection (the events against the legacy rows)' : run.target],
  ['mode', run.mode],
  ['started', when(run.startedAt, tz)],
  ['finished', when(run.finishedAt, tz)],
  ['run', html`<code>${run.runId}</code>`],
  ['projector version', html`<code>${run.projectorVersion}</code>`],
  ['declaration', html`<code>${run.configHash}</code>`],
])}
<h2>Counts</h2>
${table(
  ['rows read', 'compared', 'matched', 'mismatched', 'missing in events', 'missing in legacy', 'ignored', 'mismatches per class'],
  [[c.rows, c.compared, c.matched, c.mismatched, c.missingInEvents, c.missingInLegacy, c.ignored, classCounts(run)]],
  'counts',
)}
${fields.length > 0 ? html`<p>Mismatches per field: ${fields.map(([f, n], i) => html`${i > 0 ? ', ' : ''}<strong>${f}</strong> ${n}`)}</p>` : ''}
${(c.warnings ?? []).map((w) => html`<p class="notice">${w}</p>`)}
<h2>Mismatches</h2>
${total === 0 ? html`<p class="muted">None stored for this run.</p>` : html`<p>${total.toLocaleString('en-US')} ${total === 1 ? 'mismatch' : 'mismatches'}.</p>${pager}${mismatches.map((m) => mismatchBlock(run.aggregateType, m, shownTz))}${pager}`}`,
  };
};

function mismatchBlock(type: string, m: Mismatch, tz: string | undefined): SafeHtml {
  const aggregate = (params: Record<string, string | number | undefined>) => href('/aggregate', { type, id: m.aggregateId, tz, ...params });
  const event = (sequence: number) => href('/event', { type, id: m.aggregateId, sequence, tz });
  return html`<section class="mismatch">
<h3><a href="${aggregate({})}">${type} ${m.aggregateId}</a>: ${m.kind.replace(/-/g, ' ')} <span class="badge bad">${m.class}</span></h3>
${m.fields.length > 0 ? table(['field', 'legacy column', 'legacy value', 'projected value', 'note'], m.fields.map(fieldRow), 'fields') : ''}
<ul class="explanation">${m.explanation.map((sentence) => html`<li>${sentence}</li>`)}</ul>
${m.firstDivergence ? html`<p>First divergence: <a href="${event(m.firstDivergence.sequence)}">event ${m.firstDivergence.sequence} (${m.firstDivergence.eventType})</a>.</p>` : ''}
${m.ignoredBy ? html`<p class="muted">Accepted by the ignore rule "${m.ignoredBy.reason}", until ${m.ignoredBy.expires}.</p>` : ''}
</section>`;
}

function fieldRow(f: FieldDifference): SafeHtml[] {
  const show = (value: string | null) => (value === null ? html`<span class="muted">NULL</span>` : html`<code>${JSON.stringify(value)}</code>`);
  return [
    html`<strong>${f.field}</strong>`,
    html`<code>${f.column}</code>`,
    show(f.legacy),
    f.projected === 'missing' ? html`<span class="muted">(no such field)</span>` : show(f.projected),
    f.note ? html`${f.note}` : html``,
  ];
}
