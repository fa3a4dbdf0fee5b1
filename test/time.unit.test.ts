import { describe, expect, test } from 'vitest';
import { formatInstant, parseCliTime, toTimestampParam, toUtcIso, zoneOffsetMinutes } from '../src/time.js';

describe('times', () => {
  test('business times need an offset; Dates are exact to the millisecond', () => {
    expect(toTimestampParam('2026-02-03T10:00:00.123456+01:00', 'at')).toBe('2026-02-03T10:00:00.123456+01:00');
    expect(toTimestampParam(new Date('2026-02-03T10:00:00.5Z'), 'at')).toBe('2026-02-03T10:00:00.500Z');
    expect(() => toTimestampParam('2026-02-03T10:00:00', 'at')).toThrow(/with an offset/);
    expect(() => toTimestampParam(new Date('nope'), 'at')).toThrow(/invalid Date/);
    expect(() => toTimestampParam('2026-13-01T00:00:00Z', 'at')).toThrow(/not a real date/);
    expect(() => toTimestampParam('2026-01-01T00:00:00+16:00', 'at')).toThrow(/not a real date/);
    expect(() => toTimestampParam('0000-01-01T00:00:00Z', 'at')).toThrow(/not a real date/);
    expect(toTimestampParam('2026-01-01T00:00:00-09:30', 'at')).toBe('2026-01-01T00:00:00-09:30');
  });

  test('CLI times: bare dates are midnight in the zone, across daylight saving changes', () => {
    expect(parseCliTime('2026-03-29', 'Europe/Berlin')).toBe('2026-03-28T23:00:00Z');
    expect(parseCliTime('2026-03-30', 'Europe/Berlin')).toBe('2026-03-29T22:00:00Z');
    expect(parseCliTime('2026-03-29', 'Europe/Berlin', { wholeDay: true })).toBe('2026-03-29T22:00:00Z');
    expect(parseCliTime('2026-02-03T09:15:30.000001', 'UTC')).toBe('2026-02-03T09:15:30.000001Z');
    expect(parseCliTime('2026-02-03T09:15:00-05:00', 'UTC')).toBe('2026-02-03T09:15:00-05:00');
  });

  test('output keeps every microsecond digit and shows the offset of the zone at that instant', () => {
    expect(formatInstant('2026-07-01T12:00:00.000001Z', 'America/New_York')).toBe('2026-07-01T08:00:00.000001-04:00');
    expect(formatInstant('2026-01-01T12:00:00.999999Z', 'America/New_York')).toBe('2026-01-01T07:00:00.999999-05:00');
    expect(formatInstant('2026-01-01T00:00:00.000000Z', 'Asia/Kolkata')).toBe('2026-01-01T05:30:00.000000+05:30');
    expect(toUtcIso('2026-02-03T10:00:00.1234+0100')).toBe('2026-02-03T09:00:00.123400Z');
    expect(zoneOffsetMinutes('UTC', Date.now())).toBe(0);
  });
});

import { epochToIso } from '../src/store/eventRow.js';

test("PostgreSQL's epoch seconds become ISO UTC text to the microsecond", () => {
  expect(epochToIso('1769940000.123456')).toBe('2026-02-01T10:00:00.123456Z');
  expect(epochToIso('1769940000')).toBe('2026-02-01T10:00:00.000000Z');
  expect(epochToIso('1769940000.1')).toBe('2026-02-01T10:00:00.100000Z');
  expect(epochToIso('-1.5')).toBe('1969-12-31T23:59:58.500000Z');
  expect(epochToIso('-0.000001')).toBe('1969-12-31T23:59:59.999999Z');
  expect(epochToIso('253402300799.999999')).toBe('9999-12-31T23:59:59.999999Z');
});

import fc from 'fast-check';

test('epoch conversion agrees with Date for any second from 1970 to 9999 (property, across the day cache)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 253402300799 }), fc.integer({ min: 0, max: 999999 }), (seconds, micros) => {
      const fraction = String(micros).padStart(6, '0');
      expect(epochToIso(`${seconds}.${fraction}`)).toBe(`${new Date(seconds * 1000).toISOString().slice(0, 19)}.${fraction}Z`);
    }),
    { numRuns: 5000 },
  );
});
