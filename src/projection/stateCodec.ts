import type { JsonValue } from '../events/json.js';

/**
 * How a projector's state is stored in a snapshot (jsonb) and read back. A state restored
 * from a snapshot must deep-equal the state folded from the events, so the default codec
 * carries what JSON cannot: Dates, bigints, Maps, Sets, undefined inside arrays, NaN,
 * Infinity and -0, and strings jsonb cannot hold (NUL, lone surrogates). Anything else (a
 * class instance) needs a codec of the projector's own.
 */
export interface StateCodec<S> {
  encode(state: S): JsonValue;
  decode(json: JsonValue): S;
}

/** The tag key of encoded values; plain objects that happen to use it are escaped. */
const TAG = '$hs';

type Tagged = { [TAG]: string; v?: JsonValue };

export class UnencodableStateError extends Error {}

export const defaultStateCodec: StateCodec<any> = {
  encode: (state) => encode(state, 'state'),
  decode: (json) => decode(json),
};

function tagged(tag: string, v?: JsonValue): Tagged {
  return v === undefined ? { [TAG]: tag } : { [TAG]: tag, v };
}

const UNSAFE_STRING = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function encode(value: unknown, path: string): JsonValue {
  switch (typeof value) {
    case 'string':
      return UNSAFE_STRING.test(value) ? tagged('string', codeUnits(value)) : value;
    case 'number':
      if (Number.isNaN(value)) return tagged('NaN');
      if (value === Number.POSITIVE_INFINITY) return tagged('Infinity');
      if (value === Number.NEGATIVE_INFINITY) return tagged('-Infinity');
      if (Object.is(value, -0)) return tagged('-0');
      return value;
    case 'boolean':
      return value;
    case 'bigint':
      return tagged('bigint', value.toString());
    case 'undefined':
      return tagged('undefined');
    case 'object': {
      if (value === null) return null;
      if (value instanceof Date) return tagged('Date', Number.isNaN(value.getTime()) ? null : value.toISOString());
      if (Array.isArray(value)) return value.map((item, i) => encode(item, `${path}[${i}]`));
      if (value instanceof Map) {
        return tagged('Map', [...value.entries()].map(([k, v], i) => [encode(k, `${path}<key ${i}>`), encode(v, `${path}<value ${i}>`)]));
      }
      if (value instanceof Set) return tagged('Set', [...value].map((v, i) => encode(v, `${path}<item ${i}>`)));
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        const name = (value as { constructor?: { name?: string } }).constructor?.name ?? 'class instance';
        throw new UnencodableStateError(`${path} is a ${name}, which the default snapshot codec cannot store; give the projector a codec`);
      }
      // An undefined property and an absent one are the same to a fold: both are dropped.
      const entries = Object.entries(value)
        .filter(([, item]) => item !== undefined)
        .map(([key, item]) => [key, encode(item, `${path}.${key}`)] as const);
      const plain = entries.every(([key]) => key !== TAG && !UNSAFE_STRING.test(key));
      return plain ? Object.fromEntries(entries) : tagged('object', entries.map(([key, item]) => [codeUnits(key), item]));
    }
    default:
      throw new UnencodableStateError(`${path} is a ${typeof value}, which a snapshot cannot store`);
  }
}

function codeUnits(text: string): number[] {
  const units: number[] = [];
  for (let i = 0; i < text.length; i++) units.push(text.charCodeAt(i));
  return units;
}

function fromCodeUnits(units: number[]): string {
  let text = '';
  for (const unit of units) text += String.fromCharCode(unit);
  return text;
}

/** Sets an own property even for keys such as "__proto__", which plain assignment would treat specially. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function decode(json: JsonValue): unknown {
  if (json === null || typeof json !== 'object') return json;
  if (Array.isArray(json)) return json.map(decode);
  const tag = json[TAG];
  if (typeof tag !== 'string') {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(json)) setOwn(out, key, decode(value));
    return out;
  }
  const v = json.v;
  switch (tag) {
    case 'string':
      return fromCodeUnits(v as number[]);
    case 'NaN':
      return Number.NaN;
    case 'Infinity':
      return Number.POSITIVE_INFINITY;
    case '-Infinity':
      return Number.NEGATIVE_INFINITY;
    case '-0':
      return -0;
    case 'bigint':
      return BigInt(v as string);
    case 'undefined':
      return undefined;
    case 'Date':
      return new Date(v === null ? Number.NaN : (v as string));
    case 'Map':
      return new Map((v as JsonValue[][]).map(([k, value]) => [decode(k as JsonValue), decode(value as JsonValue)]));
    case 'Set':
      return new Set((v as JsonValue[]).map(decode));
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [units, value] of v as Array<[number[], JsonValue]>) setOwn(out, fromCodeUnits(units), decode(value));
      return out;
    }
    default:
      throw new Error(`a snapshot holds an unknown tag ${JSON.stringify(tag)}`);
  }
}
