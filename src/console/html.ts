/**
 * HTML for the console, built so that nothing reaches a page unescaped: `html` is a tagged
 * template that escapes every interpolated value unless it is itself the result of `html`
 * (or one of the few helpers here that build on it). Data never becomes markup by accident,
 * whoever wrote the id, the payload or the reason.
 */

const SAFE = Symbol('hindsight.safeHtml');

/** Markup known to be safe: made by `html`, never from a plain string. */
export interface SafeHtml {
  readonly [SAFE]: true;
  readonly text: string;
}

export type Interpolation = SafeHtml | string | number | boolean | null | undefined | readonly Interpolation[];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

function isSafe(value: unknown): value is SafeHtml {
  return typeof value === 'object' && value !== null && SAFE in value;
}

function render(value: Interpolation): string {
  if (value === null || value === undefined || value === false) return '';
  if (isSafe(value)) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/** A template whose every `${value}` is escaped (attribute values must be in double quotes). */
export function html(strings: TemplateStringsArray, ...values: Interpolation[]): SafeHtml {
  let text = strings[0]!;
  for (let i = 0; i < values.length; i++) text += render(values[i]!) + strings[i + 1]!;
  return { [SAFE]: true, text };
}

/** A link within the console: the path is a constant, the parameters are URL-encoded (and escaped by `html`). */
export function href(path: string, params: Record<string, string | number | undefined | null> = {}): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== '') query.set(key, String(value));
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * A value as JSON text for people: two-space indents, and the values a projector's state
 * may hold that JSON cannot (bigints, Maps, Sets, undefined) shown rather than thrown on.
 */
export function jsonText(value: unknown, indent = 2): string {
  if (value === undefined) return '(none)';
  return (
    JSON.stringify(
      value,
      (_key, v: unknown) => {
        if (typeof v === 'bigint') return `${v}n`;
        if (v instanceof Map) return Object.fromEntries([...v.entries()].map(([k, x]) => [String(k), x]));
        if (v instanceof Set) return [...v];
        if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
        return v;
      },
      indent,
    ) ?? String(value)
  );
}

/** One value in a table cell: compact JSON (strings quoted), `(none)` when absent. */
export function valueCell(value: unknown): SafeHtml {
  return html`<code>${jsonText(value, 0)}</code>`;
}

export interface Page {
  title: string;
  body: SafeHtml;
  /** Default 200. */
  status?: number;
}

/** The whole document: one stylesheet from this origin, no inline script or style (the CSP allows neither). */
export function layout(page: Page): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${page.title} · hindsight</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console.css">
</head>
<body>
<header><nav><a class="brand" href="/">hindsight</a> <a href="/aggregate">aggregates</a> <a href="/verify">verify runs</a></nav><span class="note">read-only console</span></header>
<main>
<h1>${page.title}</h1>
${page.body}
</main>
</body>
</html>
`.text;
}

/** A small table: a header row and rows of cells. */
export function table(headers: readonly string[], rows: readonly (readonly Interpolation[])[], className?: string): SafeHtml {
  return html`<table${className ? html` class="${className}"` : ''}><thead><tr>${headers.map((h) => html`<th>${h}</th>`)}</tr></thead><tbody>${rows.map(
    (row) => html`<tr>${row.map((cell) => html`<td>${cell}</td>`)}</tr>`,
  )}</tbody></table>`;
}

/** A two-column table of labels and values. */
export function facts(rows: ReadonlyArray<readonly [string, Interpolation]>): SafeHtml {
  return html`<table class="facts"><tbody>${rows.map(([label, value]) => html`<tr><th scope="row">${label}</th><td>${value}</td></tr>`)}</tbody></table>`;
}

/** A short label with a colour that says good, bad, in between, or neither. */
export function badge(text: string, kind: 'ok' | 'bad' | 'warn' | 'plain'): SafeHtml {
  return html`<span class="badge ${kind}">${text}</span>`;
}

export function plural(n: number, word: string): string {
  return `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;
}
