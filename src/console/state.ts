import { ValidationError } from '../errors.js';
import { toUtcIso } from '../time.js';
import { when, type PageHandler } from './context.js';
import { stateForm } from './forms.js';
import { facts, href, html, jsonText, table, valueCell } from './html.js';
import { aggregateParam, idParam, optional, timeParam, timeZoneParam, wholeNumberParam } from './input.js';

/**
 * `/state?type=&id=&asOf=|atSequence=&tz=`: an aggregate's projected state now, as of a time
 * (the prefix of its events before the first one that occurred later) or after a sequence.
 * Before its first event the answer is "no history before", never the initial state.
 */
export const statePage: PageHandler = async (ctx, url) => {
  const values = { type: optional(url, 'type'), id: optional(url, 'id'), asOf: optional(url, 'asOf'), atSequence: optional(url, 'atSequence'), tz: optional(url, 'tz') };
  const aggregate = aggregateParam(ctx.config, url);
  const id = idParam(ctx.config, aggregate, url);
  const tz = timeZoneParam(url);
  const asOf = timeParam(url, 'asOf', tz);
  const atSequence = wholeNumberParam(url, 'atSequence');
  if (asOf !== undefined && atSequence !== undefined) throw new ValidationError('give asOf or atSequence, not both', { path: 'asOf' });
  const projection = await ctx.hs.project(ctx.pool, aggregate.type, id, asOf !== undefined ? { asOf } : atSequence !== undefined ? { atSequence } : {});
  const form = stateForm(ctx.config, values);
  const title = `${aggregate.type} ${projection.aggregateId}`;
  const shownTz = values.tz ? tz : undefined;
  const link = (path: string, params: Record<string, string | number | undefined>) => href(path, { type: aggregate.type, id: projection.aggregateId, tz: shownTz, ...params });
  const point = asOf !== undefined ? html`as of ${when(toUtcIso(asOf), tz)}` : atSequence !== undefined ? `after sequence ${atSequence}` : 'now';
  if (!projection.found) {
    const message =
      projection.reason === 'no-history-before'
        ? html`No history before ${when(toUtcIso(asOf!), tz)}: the first event of ${title} is later. hindsight did not see what the row was then.`
        : html`${title} has no events.`;
    return {
      title,
      status: projection.reason === 'no-events' ? 404 : 200,
      body: html`${form}<p class="notice">${message}</p>${projection.latestVersion > 0 ? html`<p class="links"><a href="${link('/aggregate', {})}">the ledger</a></p>` : ''}`,
    };
  }
  const state: unknown = projection.state;
  const fields =
    typeof state === 'object' && state !== null && !Array.isArray(state) && !(state instanceof Map)
      ? table(['field', 'value'], Object.entries(state as Record<string, unknown>).map(([field, value]) => [html`<strong>${field}</strong>`, valueCell(value)]), 'state')
      : html`<pre>${jsonText(state)}</pre>`;
  return {
    title,
    body: html`${form}
<h2>State ${point}</h2>
${facts([
  ['version', `${projection.version} of ${projection.latestVersion}${projection.version < projection.latestVersion ? ' (later events exist)' : ' (the latest)'}`],
  ['deleted', projection.deleted ? 'yes: its last event deleted it' : 'no'],
  ['folded from', projection.fromSnapshot === null ? 'the first event (no snapshot)' : `the snapshot at sequence ${projection.fromSnapshot}`],
])}
${fields}
<details><summary>as JSON</summary><pre>${jsonText(state)}</pre></details>
<p class="links"><a href="${link('/event', { sequence: projection.version })}">the event at version ${projection.version}</a><a href="${link('/aggregate', {})}">the ledger</a></p>`,
  };
};
