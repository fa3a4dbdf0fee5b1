import type { AggregateType } from '../config/resolve.js';
import type { Sql } from '../db/queryable.js';
import { genericKindOf, type RowImage } from '../events/genericEvents.js';
import { foldInto, initialFold } from '../projection/fold.js';
import type { ProjectedEvent } from '../types.js';
import type { ComparedColumn } from './columns.js';
import { compareRows, projectedValue, type RowPairs } from './compare.js';
import type { LegacyRow } from './legacy.js';
import type { FieldDifference, Mismatch, MismatchClass } from './report.js';
import type { VisibleFold } from './visibleFolds.js';

/**
 * Why an aggregate's projection differs from its legacy row, and which class of problem
 * that is. The evidence, strongest first:
 * - row images (the listener's and the import's events carry the row as it was): the first
 *   event after which the projection stopped matching the row is a projector bug there;
 * - the images agree with the projection to the end but the row differs now, or the
 *   row's `updatedAt` is later than its last event: the row changed after its last event,
 *   so a write path is not captured (legacy drift);
 * - a field the state does not have at all, or events the projector has no handler for:
 *   a projector bug;
 * - otherwise an event is missing.
 */
export async function explainFieldMismatch(
  sql: Sql,
  aggregate: AggregateType,
  columns: readonly ComparedColumn[],
  row: LegacyRow,
  fold: VisibleFold,
  fields: FieldDifference[],
): Promise<Pick<Mismatch, 'class' | 'explanation' | 'firstDivergence'>> {
  const explanation: string[] = [];
  const last = fold.events[fold.events.length - 1];
  const images = await imageCheck(sql, aggregate, columns, fold.events);
  if (images.divergedAt) {
    const event = images.divergedAt;
    explanation.push(
      `the projection stopped matching the row after event ${event.sequence} (${event.type}, ${event.occurredAt}): ` +
        `the row image it carries differs in ${images.divergedFields.join(', ')}`,
    );
    return { class: 'projector bug', explanation, firstDivergence: { sequence: event.sequence, eventType: event.type, occurredAt: event.occurredAt } };
  }
  const changedAfterImages = images.lastImageMatchedProjection && fields.some((f) => images.lastImage && f.column in images.lastImage);
  // The time the last event was written, not its business time (occurredAt may be any time the app chose).
  const changedAfterEvent = row.updatedAt !== null && last !== undefined && row.updatedAt > fold.lastRecordedAt;
  if (changedAfterImages || changedAfterEvent) {
    const how = changedAfterEvent
      ? `(${aggregate.verify.updatedAt} ${row.updatedAt} is later than the last event's write, ${fold.lastRecordedAt})`
      : '(the last row image the events carry matches the projection)';
    explanation.push(`legacy row changed after its last event: a write path is not captured ${how}`);
    return { class: 'legacy drift', explanation };
  }
  const absent = fields.filter((f) => f.projected === 'missing');
  if (absent.length > 0) {
    explanation.push(`no event ever sets ${absent.map((f) => f.field).join(', ')}: the projector has no handler for it`);
  }
  if (fold.unhandled.size > 0) {
    explanation.push(`events of type ${[...fold.unhandled].join(', ')} were folded without a handler (skipped)`);
  }
  if (absent.length > 0 || fold.unhandled.size > 0) return { class: 'projector bug', explanation };
  explanation.push(
    last
      ? `the legacy value differs and no event explains it: a change was made that recorded no event (last event ${last.sequence}, ${last.type}, ${last.occurredAt})`
      : 'the legacy value differs and there is no event to explain it',
  );
  return { class: 'missing event', explanation };
}

interface ImageCheck {
  divergedAt?: ProjectedEvent;
  divergedFields: string[];
  lastImage?: RowImage;
  lastImageMatchedProjection: boolean;
}

/**
 * Replays the events, keeping the row as the row images show it (an import or insert shows
 * all of it, an update the columns it changed) and the projection after each event; then
 * compares the two after every event that carried an image, in one query.
 */
async function imageCheck(sql: Sql, aggregate: AggregateType, columns: readonly ComparedColumn[], events: readonly ProjectedEvent[]): Promise<ImageCheck> {
  const checkpoints: Array<{ event: ProjectedEvent; image: RowImage; state: unknown }> = [];
  let image: RowImage | undefined;
  const folded = initialFold(aggregate);
  for (const event of events) {
    foldInto(aggregate, folded, event);
    const kind = genericKindOf(aggregate.tableLabel, event.type);
    if (!kind) continue;
    if (kind === 'deleted') {
      image = undefined;
      continue;
    }
    const after = (event.payload as { after?: RowImage }).after;
    if (!after) continue;
    image = kind === 'updated' && image ? { ...image, ...after } : { ...after };
    checkpoints.push({ event, image, state: folded.state });
  }
  if (checkpoints.length === 0) return { divergedFields: [], lastImageMatchedProjection: false };
  const shown = columns.filter((c) => checkpoints.some((p) => c.column in p.image));
  const pairs: RowPairs[] = checkpoints.map((p) => ({
    legacy: shown.map((c) => {
      const value = p.image[c.column];
      return value === undefined || value === null ? null : renamed(c, String(value));
    }),
    projected: shown.map((c) => (c.column in p.image ? projectedValue(p.state, c.field) : { missing: false, text: null })),
  }));
  // Columns an image does not show (not yet known) are not compared at that point.
  const verdicts = await compareRows(sql, shown, pairs);
  for (let i = 0; i < checkpoints.length; i++) {
    const differing = shown.filter((c, k) => c.column in checkpoints[i]!.image && !verdicts[i]![k]!.equal).map((c) => c.field);
    if (differing.length > 0) return { divergedAt: checkpoints[i]!.event, divergedFields: differing, lastImageMatchedProjection: false };
  }
  return { divergedFields: [], lastImage: checkpoints[checkpoints.length - 1]!.image, lastImageMatchedProjection: true };
}

/** A legacy value after the column's `values` rename. */
export function renamed(column: ComparedColumn, text: string | null): string | null {
  if (text === null || !column.values) return text;
  return column.values.has(text) ? column.values.get(text)! : text;
}

export const CLASS_OF_MISSING: Record<'missing-in-events' | 'missing-in-legacy', MismatchClass> = {
  'missing-in-events': 'missing event',
  'missing-in-legacy': 'legacy drift',
};
