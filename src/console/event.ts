import { NotFoundError } from '../errors.js';
import { when, type PageHandler } from './context.js';
import { facts, href, html, jsonText } from './html.js';
import { aggregateParam, idParam, optional, required, timeZoneParam, wholeNumberParam } from './input.js';

/** `/event?type=&id=&sequence=`: one stored event whole: its payload, its metadata and every column. */
export const eventPage: PageHandler = async (ctx, url) => {
  const aggregate = aggregateParam(ctx.config, url);
  const id = idParam(ctx.config, aggregate, url);
  required(url, 'sequence', 'the sequence of the event in its aggregate, from 1');
  const sequence = wholeNumberParam(url, 'sequence')!;
  const tz = timeZoneParam(url);
  const [[event], version] = await Promise.all([
    ctx.hs.readAggregate(ctx.pool, aggregate.type, id, { fromSequence: sequence, toSequence: sequence }),
    ctx.hs.version(ctx.pool, aggregate.type, id),
  ]);
  if (!event) {
    const canonical = await ctx.hs.canonicalId(ctx.pool, aggregate.type, id);
    throw new NotFoundError(`${aggregate.type} ${canonical} has no event at sequence ${sequence} (${version === 0 ? 'it has no events' : `it is at version ${version}`})`);
  }
  const shownTz = optional(url, 'tz') ? tz : undefined;
  const link = (path: string, params: Record<string, string | number | undefined>) => href(path, { type: aggregate.type, id: event.aggregateId, tz: shownTz, ...params });
  const utc = (iso: string) => (tz === 'UTC' ? when(iso, tz) : html`${when(iso, tz)} <span class="muted">(${iso})</span>`);
  return {
    title: `${aggregate.type} ${event.aggregateId} #${event.sequence}: ${event.type}`,
    body: html`<p class="links">${event.sequence > 1 ? html`<a href="${link('/event', { sequence: event.sequence - 1 })}">previous event</a>` : ''}${event.sequence < version ? html`<a href="${link('/event', { sequence: event.sequence + 1 })}">next event</a>` : ''}<a href="${link('/state', { atSequence: event.sequence })}">state after this event</a><a href="${link('/aggregate', {})}">the ledger</a></p>
<h2>Payload</h2>
<pre class="payload">${jsonText(event.payload)}</pre>
<h2>Metadata</h2>
<pre class="metadata">${jsonText(event.metadata)}</pre>
<h2>Stored columns</h2>
${facts([
  ['event id', html`<code>${event.eventId}</code>`],
  ['event type', html`<code>${event.type}</code>`],
  ['schema version', event.schemaVersion],
  ['aggregate', html`${event.aggregateType} <code>${event.aggregateId}</code>`],
  ['sequence', event.sequence],
  ['global position', event.globalPosition],
  ['occurred at', utc(event.occurredAt)],
  ['recorded at', utc(event.recordedAt)],
  ['source', event.source],
  ['source commit LSN', event.sourceCommitLsn ?? '-'],
  ['source ordinal', event.sourceOrdinal ?? '-'],
  ['source transaction', event.sourceXid ?? '-'],
  ['writing transaction', event.transactionId],
  ['hash', html`<code>${event.hash}</code>`],
])}`,
  };
};
