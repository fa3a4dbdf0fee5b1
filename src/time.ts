import { ValidationError } from './errors.js';

/**
 * Instants travel as text: PostgreSQL keeps microseconds and JavaScript's Date keeps
 * milliseconds, so hindsight reads timestamps as ISO-8601 UTC text to the microsecond
 * and binds them as text with an explicit offset (text without one would follow the
 * session's TimeZone).
 */

const ISO_WITH_OFFSET =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}(?::?\d{2})?)$/i;
const LOCAL_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?$/;

/** Turns a business time (a Date, or an ISO-8601 string with an offset) into a timestamptz parameter. */
export function toTimestampParam(value: Date | string, where: string): string {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new ValidationError(`${where} is an invalid Date`, { path: where });
    return value.toISOString();
  }
  if (typeof value !== 'string') {
    throw new ValidationError(`${where} must be a Date or an ISO-8601 string with an offset, got ${typeof value}`, { path: where });
  }
  const match = ISO_WITH_OFFSET.exec(value.trim());
  if (!match) {
    throw new ValidationError(
      `${where} must be ISO-8601 with an offset, such as 2026-02-03T09:15:00Z or 2026-02-03T10:15:00+01:00; got ${JSON.stringify(value)}` +
        ' (a time without an offset would depend on the database session\'s time zone)',
      { path: where },
    );
  }
  checkCalendar(match, value, where);
  return value.trim();
}

function checkCalendar(match: RegExpExecArray, original: string, where: string): void {
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(match[i] ?? 0)) as number[];
  const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
  const zone = match[8];
  // PostgreSQL accepts offsets up to 15:59 and has no year 0.
  const offsetOk = !zone || zone.toUpperCase() === 'Z' || (Number(zone.slice(1, 3)) <= 15 && Number(zone.slice(3).replace(':', '') || 0) < 60);
  if (year! < 1 || month! < 1 || month! > 12 || day! < 1 || day! > daysInMonth || hour! > 23 || minute! > 59 || second! > 59 || !offsetOk) {
    throw new ValidationError(`${where}: ${JSON.stringify(original)} is not a real date and time`, { path: where });
  }
}

/** Fails with a clear message unless `tz` is an IANA time zone name (or UTC). */
export function checkTimeZone(tz: string): string {
  if (tz === 'UTC') return tz; // the default, valid without loading ICU's zone data
  try {
    zoneFormat(tz);
    return tz;
  } catch {
    throw new ValidationError(`unknown time zone ${JSON.stringify(tz)}; use an IANA name such as UTC or Europe/Berlin`, {
      path: 'tz',
    });
  }
}

const zoneFormats = new Map<string, Intl.DateTimeFormat>();

/**
 * One formatter per zone for the process: making one costs about 0.1 ms (the first of a
 * process 3-4 ms more, loading ICU's zone data), and a ledger formats two times per
 * event. Throws a RangeError for an unknown zone.
 */
function zoneFormat(tz: string): Intl.DateTimeFormat {
  let format = zoneFormats.get(tz);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    zoneFormats.set(tz, format);
  }
  return format;
}

/** Minutes east of UTC of `tz` at the instant `utcMs`. */
export function zoneOffsetMinutes(tz: string, utcMs: number): number {
  if (tz === 'UTC') return 0;
  const parts = zoneFormat(tz).formatToParts(new Date(utcMs));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return Math.round((asUtc - Math.floor(utcMs / 1000) * 1000) / 60000);
}

/**
 * A CLI time: ISO-8601 with an offset, or a bare date or date-time read as wall time in
 * `tz`. A bare date is midnight; with `wholeDay` (for `--to`) it is the next midnight,
 * so the bound (exclusive) includes the whole day. Returns text with an explicit offset.
 */
export function parseCliTime(text: string, tz: string, options: { wholeDay?: boolean } = {}): string {
  const trimmed = text.trim();
  if (ISO_WITH_OFFSET.test(trimmed)) return toTimestampParam(trimmed, 'time');
  const match = LOCAL_DATE_TIME.exec(trimmed);
  if (!match) {
    throw new ValidationError(
      `${JSON.stringify(text)} is not a time; use a date (2026-02-03), a date and time (2026-02-03T09:15) or ISO-8601 with an offset`,
      { path: 'time' },
    );
  }
  const fields = [1, 2, 3, 4, 5, 6].map((i) => Number(match[i] ?? 0)) as [number, number, number, number, number, number];
  checkCalendar(match, text, 'time');
  const bareDate = match[4] === undefined;
  const dayShift = bareDate && options.wholeDay ? 1 : 0;
  const wallAsUtc = Date.UTC(fields[0], fields[1] - 1, fields[2] + dayShift, fields[3], fields[4], fields[5]);
  // The offset at the wall time, found by two refinements (exact except inside a DST gap).
  let utc = wallAsUtc - zoneOffsetMinutes(tz, wallAsUtc) * 60000;
  utc = wallAsUtc - zoneOffsetMinutes(tz, utc) * 60000;
  const fraction = match[7] ? `.${match[7]}` : '';
  return `${new Date(utc).toISOString().slice(0, 19)}${fraction}Z`;
}

/** Formats ISO UTC text (to the microsecond) as wall time in `tz` with its offset, keeping all digits. */
export function formatInstant(isoUtc: string, tz: string): string {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z$/.exec(isoUtc);
  if (!match) return isoUtc;
  const seconds = Date.parse(`${match[1]}Z`);
  const offset = zoneOffsetMinutes(tz, seconds);
  const local = new Date(seconds + offset * 60000).toISOString().slice(0, 19);
  const fraction = (match[2] ?? '').padEnd(6, '0');
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${local}.${fraction}${sign}${hh}:${mm}`;
}

/** ISO-8601 text with any offset as UTC text to the microsecond (`...Z`), keeping every fractional digit. */
export function toUtcIso(text: string): string {
  const match = ISO_WITH_OFFSET.exec(text.trim());
  if (!match) throw new ValidationError(`${JSON.stringify(text)} is not ISO-8601 with an offset`);
  const [, y, mo, d, h, mi, sec, frac, zone] = match;
  const offset = zone!.toUpperCase() === 'Z' ? 'Z' : `${zone!.slice(0, 3)}:${zone!.slice(3).replace(':', '').padEnd(2, '0')}`;
  const seconds = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${sec ?? '00'}${offset}`);
  return `${new Date(seconds).toISOString().slice(0, 19)}.${(frac ?? '').padEnd(6, '0')}Z`;
}
