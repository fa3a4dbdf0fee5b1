import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { initialCopier } from '../../src/projection/copyInitial.js';
import { defineProjector } from '../../src/projection/defineProjector.js';

/**
 * Initial states: plain trees (the fast copy) mixed with what only structuredClone copies.
 * (No "constructor" key: toStrictEqual compares that property as the objects' class.)
 */
const initialValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string({ unit: 'binary' }),
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.bigInt(),
    fc.date(),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ unit: 'binary' }), tie('value'), { maxKeys: 4 }),
    fc.dictionary(fc.constantFrom('__proto__', 'toString', 'a'), tie('value'), { maxKeys: 2 }),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3 }).map((pairs) => new Map(pairs)),
  ),
})).value;

describe("a projector's initial state", () => {
  test('each copy equals what structuredClone makes, and shares nothing with the others or the caller (property)', () => {
    fc.assert(
      fc.property(initialValue, (initial) => {
        const copy = initialCopier(initial);
        const first = copy();
        expect(first).toStrictEqual(structuredClone(initial));
        if (typeof first === 'object' && first !== null) {
          expect(copy()).not.toBe(first);
          expect(first).not.toBe(initial);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('an own "__proto__" key stays a key, not a prototype', () => {
    const initial = JSON.parse('{"__proto__": {"polluted": true}, "n": 1}') as Record<string, unknown>;
    const made = initialCopier(initial)();
    expect(Object.getPrototypeOf(made)).toBe(Object.prototype);
    expect(Object.keys(made)).toEqual(['__proto__', 'n']);
    expect((made as { polluted?: boolean }).polluted).toBeUndefined();
  });

  test("mutating one aggregate's state, or the caller's object after defining, changes no later copy", () => {
    const initial = { balance: 0, tags: ['a'], nested: { count: 0 } };
    const projector = defineProjector({ aggregateType: 'account', initial, handlers: {} });
    const one = projector.initial();
    one.tags.push('b');
    one.nested.count = 5;
    initial.balance = 99;
    initial.tags.push('c');
    expect(projector.initial()).toStrictEqual({ balance: 0, tags: ['a'], nested: { count: 0 } });
  });

  test('shared references and cycles are kept, as structuredClone keeps them', () => {
    const shared = { n: 1 };
    const cyclic: Record<string, unknown> = { shared, again: shared };
    cyclic.self = cyclic;
    const made = initialCopier(cyclic)() as typeof cyclic;
    expect(made.shared).toBe(made.again);
    expect(made.self).toBe(made);
  });

  test('an initial value that cannot be copied is refused when the projector is defined, with what to do', () => {
    expect(() => defineProjector({ aggregateType: 'account', initial: { onEvent: () => 1 }, handlers: {} })).toThrow(/initial cannot be copied.*pass a factory function/);
  });
});
