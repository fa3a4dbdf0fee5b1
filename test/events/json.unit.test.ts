import { describe, expect, test } from 'vitest';
import { toJsonText } from '../../src/events/json.js';
import { redactUrl } from '../../src/db/redactUrl.js';
import { toKnexBindings } from '../../src/db/queryable.js';
import { keyParameters } from '../../src/db/canonicalKey.js';
import { parseKeyType } from '../../src/config/keyTypes.js';
import { quoteIdent } from '../../src/db/identifiers.js';

describe('payload JSON', () => {
  test('plain JSON passes; Dates become ISO strings', () => {
    expect(toJsonText({ a: [1, 'x', null, true], d: new Date('2026-01-01T00:00:00Z') }, 'payload')).toBe('{"a":[1,"x",null,true],"d":"2026-01-01T00:00:00.000Z"}');
  });
  test.each([
    [{ n: 1n }, /payload\.n is a bigint/],
    [{ n: Number.POSITIVE_INFINITY }, /payload\.n is Infinity/],
    [{ list: [1, Number.NaN] }, /payload\.list\[1\] is NaN/],
    [{ f: () => 1 }, /payload\.f is a function/],
    [{ s: 'a\u0000b' }, /NUL character/],
    [{ 'k\u0000': 1 }, /has a key that contains a NUL/],
    [{ s: '\udc00' }, /unpaired UTF-16 surrogate/],
  ])('%o is refused', (value, message) => {
    expect(() => toJsonText(value, 'payload')).toThrow(message);
  });
  test('a cycle is refused', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expect(() => toJsonText(a, 'payload')).toThrow(/refers to itself/);
  });
});

describe('small pieces', () => {
  test('passwords are hidden in URLs and key=value strings', () => {
    expect(redactUrl('postgres://app:s3cr%40t@db:5432/prod')).toBe('postgres://app:****@db:5432/prod');
    expect(redactUrl('host=db password=s3cret user=app')).toBe('host=db password=**** user=app');
    expect(redactUrl('postgres://app@db/prod')).toBe('postgres://app@db/prod');
  });

  test('knex bindings: $n in any order and repeated', () => {
    expect(toKnexBindings('select $2::int, $1::text, $2::int', ['a', 1])).toEqual({ sql: 'select ?::int, ?::text, ?::int', bindings: [1, 'a', 1] });
    expect(() => toKnexBindings('select $1 ? $2', [1, 2])).toThrow();
  });

  test('identifiers are quoted, quotes doubled', () => {
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(() => quoteIdent('')).toThrow();
  });

  test('key types and key values', () => {
    const bigint = parseKeyType('BIGINT');
    expect(bigint).toMatchObject({ kind: 'integer', sql: 'bigint' });
    expect(parseKeyType('character varying(12)')).toMatchObject({ sql: 'character varying(12)', maxLength: 12 });
    expect(parseKeyType('decimal(10, 2)')).toMatchObject({ sql: 'numeric(10,2)' });
    expect(parseKeyType('timestamptz')).toHaveProperty('error');
    const columns = [{ column: 'id', quoted: '"id"', type: bigint as never }];
    expect(keyParameters('account', columns, 9007199254740993n)).toEqual(['9007199254740993']);
    expect(() => keyParameters('account', columns, 2 ** 60)).toThrow(/safe integer/);
    expect(() => keyParameters('account', columns, '9223372036854775808')).toThrow(/integer from/);
    expect(() => keyParameters('account', columns, [1, 2])).toThrow(/expected one key value/);
    const money = [{ column: 'id', quoted: '"id"', type: parseKeyType('numeric(10,2)') as never }];
    expect(keyParameters('x', money, '1.500')).toEqual(['1.500']);
    expect(() => keyParameters('x', money, '1.004')).toThrow(/at most 2 decimals/);
    expect(() => keyParameters('x', money, '99999999.995')).toThrow(/at most 2 decimals/);
    const uuid = [{ column: 'id', quoted: '"id"', type: parseKeyType('uuid') as never }];
    expect(keyParameters('x', uuid, '{a0eebc999c0b4ef8bb6d6bb9bd380a11}')).toHaveLength(1);
    expect(() => keyParameters('x', uuid, '{a0eebc999c0b4ef8bb6d6bb9bd380a11')).toThrow(/expected a UUID/);
  });

  test('redaction covers unencoded "@" in passwords and quoted key=value passwords', () => {
    expect(redactUrl('postgres://u:p@ss@host/db')).toBe('postgres://u:****@host/db');
    expect(redactUrl("host=h password='a b' user=u")).toBe('host=h password=**** user=u');
  });
});
