/** Small text helpers for human output. */

/** A value as it reads best on one line: strings quoted, objects as compact JSON, long values cut. */
export function showValue(value: unknown, max = 80): string {
  if (value === undefined) return '(none)';
  const text = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

export function plural(n: number, word: string): string {
  return `${grouped(n)} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * A count with thousands separators, as `toLocaleString('en-US')` writes it; by hand for
 * integers, since the first toLocaleString of a process loads ICU's number data (4-8 ms
 * of a short command).
 */
function grouped(n: number): string {
  return Number.isSafeInteger(n) ? String(n).replace(/\B(?=(\d{3})+$)/g, ',') : n.toLocaleString('en-US');
}
