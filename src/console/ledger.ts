import { ValidationError } from '../errors.js';
import type { FieldChange } from '../projection/history.js';
import { toUtcIso } from '../time.js';
import { when, type PageHandler } from './context.js';
import { ledgerForm } from './forms.js';
import { href, html, jsonText, plural, table, type SafeHtml } from './html.js';
import { aggregateParam, idParam, optional, timeParam, timeZoneParam } from './input.js';

/**
 * `/aggregate?type=&id=&from=&to=&tz=`: the ledger of one aggregate between two times (the
 * `history` answer): per event, when, sequence, type, who, why, and the state fields it
 * changed from what to what. Without a type and id, the form to find one.
 */
export const ledgerPage: PageHandler = async (ctx, url) => {
  const values = { type: optional(url, 'type'), id: optional(url, 'id'), from: optional(url, 'from'), to: optional(url, 'to'), tz: optional(url, 'tz') };
  if (values.type === undefined && values.id === undefined) {
    return { title: 'Find an aggregate', body: html`<p>Pick a type and an id; leave the dates empty for the whole history.</p>${ledgerForm(ctx.config, values)}` };
  }
  const aggregate = aggregateParam(ctx.config, url);
  const id = idParam(ctx.config, aggregate, url);
  const tz = timeZoneParam(url);
  const from = timeParam(url, 'from', tz);
  const to = timeParam(url, 'to', tz, { wholeDay: true });
  if (from && to && Date.parse(from) >= Date.parse(to)) throw new ValidationError(`from (${values.from}) must be before to (${values.to})`, { path: 'from' });
  const ledger = await ctx.hs.history(ctx.pool, aggregate.type, id, { from, to });
  const shownTz = values.tz ? tz : undefined;
  const link = (path: string, params: Record<string, string | number | undefined>) => href(path, { type: aggregate.type, id: ledger.aggregateId, ...params });
  const range = html`${from ? html`from ${when(toUtcIso(from), tz)}` : 'from the first event'} ${to ? html`to ${when(toUtcIso(to), tz)} (exclusive)` : 'to now'}`;
  const rows = ledger.entries.map(({ event, changes }) => [
    when(event.occurredAt, tz),
    html`<a href="${link('/event', { sequence: event.sequence, tz: shownTz })}">#${event.sequence}</a>`,
    html`<code>${event.type}</code>`,
    event.metadata.actor === undefined ? html`<span class="muted">(no actor recorded)</span>` : String(event.metadata.actor),
    event.metadata.reason === undefined ? html`<span class="muted">-</span>` : String(event.metadata.reason),
    changeList(changes),
  ]);
  const stateLinks = html`<p class="links"><a href="${link('/state', { tz: shownTz })}">state now</a>${
    to ? html`<a href="${link('/state', { asOf: to, tz: shownTz })}">state at the end of this range</a>` : ''
  }<a href="${href('/verify', { type: aggregate.type })}">verify runs of ${aggregate.type}</a></p>`;
  const summary =
    ledger.version === 0
      ? html`<p class="notice">This aggregate has no events at all.</p>`
      : html`<p>${plural(ledger.entries.length, 'event')} ${range}, times in ${tz}; the aggregate is at version ${ledger.version}.</p>`;
  return {
    title: `${aggregate.type} ${ledger.aggregateId}`,
    body: html`${ledgerForm(ctx.config, values)}
${summary}${stateLinks}
${rows.length > 0 ? table(['when', 'sequence', 'event', 'actor', 'reason', 'fields changed'], rows, 'ledger') : ledger.version > 0 ? html`<p>No event occurred in this range.</p>` : ''}`,
  };
};

function changeList(changes: readonly FieldChange[]): SafeHtml {
  if (changes.length === 0) return html`<span class="muted">(no state field changed)</span>`;
  return html`<ul class="changes">${changes.map(
    (c) => html`<li><strong>${c.field}</strong>: <code>${jsonText(c.from, 0)}</code><span class="arrow">→</span><code>${jsonText(c.to, 0)}</code></li>`,
  )}</ul>`;
}
