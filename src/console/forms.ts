import type { ResolvedConfig } from '../config/resolve.js';
import { html, type SafeHtml } from './html.js';

/** The query forms (GET, so every answer has a URL that can be shared and reloaded). */

function typeSelect(config: ResolvedConfig, selected: string | undefined): SafeHtml {
  return html`<label>type<select name="type">${[...config.aggregates.keys()].map(
    (type) => html`<option value="${type}"${type === selected ? html` selected` : ''}>${type}</option>`,
  )}</select></label>`;
}

function field(name: string, label: string, value: string | undefined, placeholder: string): SafeHtml {
  return html`<label>${label}<input name="${name}" value="${value ?? ''}" placeholder="${placeholder}"></label>`;
}

const TIME_HINT = 'e.g. 2026-02-03';

const TIME_HELP = html`<p class="hint">Times: a date (midnight) or a date and time (2026-02-03T09:15) in the time zone, or ISO-8601 with an offset. Time zone: an IANA name such as Europe/Berlin; UTC when empty.</p>`;

/** Find an aggregate and pick the range of its ledger. */
export function ledgerForm(config: ResolvedConfig, values: { type?: string; id?: string; from?: string; to?: string; tz?: string }): SafeHtml {
  return html`<form class="query" method="get" action="/aggregate">
${typeSelect(config, values.type)}
${field('id', 'id', values.id, 'e.g. 42, or ["eu", 42]')}
${field('from', 'from (inclusive)', values.from, TIME_HINT)}
${field('to', 'to (a date includes that day)', values.to, TIME_HINT)}
${field('tz', 'time zone', values.tz, 'UTC')}
<button type="submit">show the ledger</button>
${TIME_HELP}
</form>`;
}

/** Pick the point of an aggregate's state: a time, or a sequence. */
export function stateForm(config: ResolvedConfig, values: { type?: string; id?: string; asOf?: string; atSequence?: string; tz?: string }): SafeHtml {
  return html`<form class="query" method="get" action="/state">
${typeSelect(config, values.type)}
${field('id', 'id', values.id, 'e.g. 42')}
${field('asOf', 'as of', values.asOf, TIME_HINT)}
${field('atSequence', 'or at sequence', values.atSequence, 'e.g. 3')}
${field('tz', 'time zone', values.tz, 'UTC')}
<button type="submit">show the state</button>
${TIME_HELP}
</form>`;
}
