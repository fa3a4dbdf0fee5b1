import { when, type PageHandler } from './context.js';
import { badge, href, html, table } from './html.js';
import { aggregateParam, optional, timeZoneParam } from './input.js';

/** `/gate?type=&readModel=`: the cut-over gate's checklist, as `hindsight cutover status` shows it. */
export const gatePage: PageHandler = async (ctx, url) => {
  const aggregate = aggregateParam(ctx.config, url);
  const readModel = optional(url, 'readModel');
  const tz = timeZoneParam(url);
  const status = await ctx.hs.cutoverStatus(ctx.pool, aggregate.type, { readModel });
  const rows = status.checklist.map((item) => [item.ok ? badge('met', 'ok') : badge('not met', 'bad'), item.check, item.detail]);
  const source = status.source === 'legacy' ? 'the legacy columns' : html`the read model <code>${status.readModel}</code>`;
  return {
    title: `Cut-over gate of ${aggregate.type}`,
    body: html`<p>Reads of ${aggregate.type} come from ${source}${status.switchedAt ? html` (since ${when(status.switchedAt, tz)})` : ''}.</p>
<p>The gate to the read model <code>${status.readModel}</code> is ${status.passed ? badge('OPEN', 'ok') : badge('CLOSED', 'bad')}${
      status.passed ? '' : html`: every check must be met before <code>hindsight cutover switch</code> moves reads.`
    }</p>
${table(['', 'check', 'detail'], rows, 'checklist')}
<p class="links"><a href="${href('/verify', { type: aggregate.type })}">verify runs of ${aggregate.type}</a></p>`,
  };
};
