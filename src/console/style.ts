/**
 * The console's one stylesheet, served at /console.css (the CSP allows only this origin's
 * own styles, so none is inline). Plain CSS: readable tables, nothing to build.
 */
export const CONSOLE_CSS = `
:root { --fg: #1d232b; --muted: #5b6672; --line: #d7dde3; --head: #eef1f4; --zebra: #f8f9fb; --accent: #1f5fa8;
  --ok: #1b7a3d; --ok-bg: #e6f4ea; --bad: #b3261e; --bad-bg: #fce8e6; --warn: #8a5a00; --warn-bg: #fff4d6; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: #fff; }
header { display: flex; justify-content: space-between; align-items: baseline; padding: 10px 24px; border-bottom: 1px solid var(--line); background: #f4f6f8; }
header nav a { margin-right: 18px; color: var(--accent); text-decoration: none; }
header nav a.brand { font-weight: 700; color: var(--fg); }
header .note { color: var(--muted); font-size: 13px; }
main { padding: 16px 24px 40px; max-width: 1400px; }
h1 { font-size: 22px; margin: 4px 0 12px; }
h2 { font-size: 18px; margin: 28px 0 8px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
a { color: var(--accent); }
p { margin: 6px 0 10px; }
.scroll { overflow-x: auto; }
code, pre { font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
pre { background: var(--zebra); border: 1px solid var(--line); border-radius: 4px; padding: 10px 12px; overflow-x: auto; margin: 6px 0 14px; }
table { border-collapse: collapse; margin: 6px 0 16px; }
th, td { border: 1px solid var(--line); padding: 5px 9px; text-align: left; vertical-align: top; }
thead th { background: var(--head); font-weight: 600; }
tbody tr:nth-child(even) td { background: var(--zebra); }
table.facts th { background: var(--head); font-weight: 600; white-space: nowrap; }
/* the counts of verification runs */
table.runs td:nth-child(n+5):nth-child(-n+11), table.counts td:nth-child(-n+7) { text-align: right; font-variant-numeric: tabular-nums; }
td .time, td.time { white-space: nowrap; font-variant-numeric: tabular-nums; }
ul.changes { margin: 0; padding-left: 0; list-style: none; }
ul.changes li { white-space: nowrap; }
.arrow { color: var(--muted); padding: 0 4px; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 13px; font-weight: 600; white-space: nowrap; }
.badge.ok { color: var(--ok); background: var(--ok-bg); }
.badge.bad { color: var(--bad); background: var(--bad-bg); }
.badge.warn { color: var(--warn); background: var(--warn-bg); }
.badge.plain { color: var(--muted); background: var(--head); }
.problem { border-left: 4px solid var(--bad); background: var(--bad-bg); padding: 8px 12px; margin: 8px 0 14px; }
.notice { border-left: 4px solid var(--warn); background: var(--warn-bg); padding: 8px 12px; margin: 8px 0 14px; }
form.query { display: flex; flex-wrap: wrap; gap: 10px 14px; align-items: flex-end; padding: 10px 12px; margin: 6px 0 16px; background: #f4f6f8; border: 1px solid var(--line); border-radius: 4px; }
form.query label { display: flex; flex-direction: column; font-size: 13px; color: var(--muted); }
form.query input, form.query select { font: inherit; padding: 4px 6px; border: 1px solid #b9c2cb; border-radius: 3px; min-width: 10em; color: var(--fg); background: #fff; }
form.query .hint { flex-basis: 100%; font-size: 13px; color: var(--muted); margin: 0; }
form.query button { font: inherit; padding: 5px 14px; border: 1px solid var(--accent); border-radius: 3px; background: var(--accent); color: #fff; cursor: pointer; }
.mismatch { border: 1px solid var(--line); border-radius: 4px; padding: 8px 14px 4px; margin: 10px 0 14px; }
.mismatch h3 { margin-top: 4px; }
.explanation { margin: 4px 0 10px; padding-left: 18px; }
.links a { margin-right: 14px; }
`;
