/**
 * A fresh copy of a projector's initial state for every aggregate. structuredClone is
 * correct for any value but costs about 3 µs a call, which a rebuild pays once per
 * aggregate (0.3 s for 100,000 of them); a plain tree of objects, arrays and primitives
 * is copied by a loop in a tenth of that. The value is cloned once up front, so a caller
 * mutating its own object later changes nothing, and the choice is made on that private
 * copy, which nobody else can reach.
 */
export function initialCopier<S>(initial: S): () => S {
  const template = structuredClone(initial);
  if (isPlainTree(template, new Set())) return () => copyPlainTree(template);
  return () => structuredClone(template);
}

/**
 * True for primitives and for objects and arrays made only of those, each reached once
 * (structuredClone keeps shared references and cycles; the loop would not). The value is
 * structuredClone's own output, so its objects are plain or built-ins (Date, Map, Set...),
 * which the loop leaves to structuredClone.
 */
function isPlainTree(value: unknown, seen: Set<object>): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (seen.has(value)) return false;
  seen.add(value);
  if (Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length !== value.length || keys.some((key, i) => key !== String(i))) return false; // holes or extra keys
    return value.every((item) => isPlainTree(item, seen));
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  return Object.values(value).every((item) => isPlainTree(item, seen));
}

function copyPlainTree<S>(value: S): S {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(copyPlainTree) as S;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const item = copyPlainTree((value as Record<string, unknown>)[key]);
    // An own "__proto__" key (JSON.parse makes them) would set the prototype if assigned.
    if (key === '__proto__') Object.defineProperty(copy, key, { value: item, enumerable: true, writable: true, configurable: true });
    else copy[key] = item;
  }
  return copy as S;
}
