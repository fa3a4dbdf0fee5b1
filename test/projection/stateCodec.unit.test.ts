import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { defaultStateCodec, UnencodableStateError } from '../../src/projection/stateCodec.js';

/** What a fold can produce: JSON plus Dates, bigints, Maps, Sets, odd numbers and odd strings, nested. */
const stateValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string({ unit: 'binary' }),
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.bigInt(),
    fc.date(),
    fc.constantFrom(Number.NaN, -0, Number.POSITIVE_INFINITY, new Date(Number.NaN)),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ unit: 'binary' }), tie('value'), { maxKeys: 4, noNullPrototype: true }),
    fc.dictionary(fc.constantFrom('$hs', 'v', '__proto__', 'a'), tie('value'), { maxKeys: 2, noNullPrototype: true }),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3 }).map((pairs) => new Map(pairs)),
    fc.array(tie('value'), { maxLength: 3 }).map((items) => new Set(items)),
  ),
})).value;

describe('the default snapshot codec', () => {
  test('a state survives encode, JSON text and decode exactly (property)', () => {
    fc.assert(
      fc.property(stateValue, (state) => {
        const stored = JSON.stringify(defaultStateCodec.encode(state));
        expect(defaultStateCodec.decode(JSON.parse(stored))).toStrictEqual(state);
      }),
      { numRuns: 2000 },
    );
  });

  test('undefined properties are dropped like absent ones; undefined in an array is kept', () => {
    const decoded = defaultStateCodec.decode(JSON.parse(JSON.stringify(defaultStateCodec.encode({ a: undefined, b: [undefined, 1] }))));
    expect(decoded).toStrictEqual({ b: [undefined, 1] });
  });

  test('a class instance needs a codec of its own', () => {
    class Money {
      constructor(readonly cents: number) {}
    }
    expect(() => defaultStateCodec.encode({ total: new Money(5) })).toThrow(UnencodableStateError);
    expect(() => defaultStateCodec.encode({ total: new Money(5) })).toThrow(/state\.total is a Money/);
  });
});
