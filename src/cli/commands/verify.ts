import fs from 'node:fs/promises';
import path from 'node:path';
import { toSql } from '../../db/queryable.js';
import { UsageError } from '../../errors.js';
import { storeTables } from '../../store/tables.js';
import { lastCleanFullRun, recentRuns, type StoredRun } from '../../verify/history.js';
import { verifyMetrics } from '../../verify/metrics.js';
import { exitCodeOf, type Mismatch, type VerifyReport } from '../../verify/report.js';
import { verify } from '../../verify/run.js';
import { cliAggregateId } from '../aggregateId.js';
import type { CommandContext } from '../context.js';
import { verifyFailpoint } from '../failpoint.js';
import { plural } from '../format.js';
import type { Command } from '../parse.js';

type VerifyCommand = Extract<Command, { name: 'verify' }>;

/**
 * `verify [type]`: the dual-run check. Exit 0 clean (or empty), 1 mismatches, 2 incomplete
 * or an error; every run is stored, and `--history` shows the stored ones.
 */
export async function runVerify(ctx: CommandContext, command: VerifyCommand): Promise<number> {
  const config = await ctx.config();
  const types = command.aggregateType ? [command.aggregateType] : undefined;
  if (command.history) return showHistory(ctx, types);
  let ids: string[] | undefined;
  if (command.ids.length > 0) {
    if (!command.aggregateType) throw new UsageError('verify --ids needs a type: hindsight verify <type> --ids ID...');
    const hs = await ctx.hindsight();
    ids = await ctx.withPool((pool) => Promise.all(command.ids.map((raw) => hs.canonicalId(pool, command.aggregateType!, cliAggregateId(config, command.aggregateType!, raw)))));
  }
  const url = await ctx.databaseUrl();
  const bar = ctx.io.isTTY && !ctx.global.json && !command.jsonl;
  const report = await verify(config, {
    connectionString: url,
    types,
    target: command.target,
    ids,
    sample: command.sample,
    changedSinceLast: command.changedSinceLast,
    lagTimeoutMs: command.lagTimeoutMs,
    concurrency: command.concurrency,
    pauseMs: command.pauseMs,
    workers: command.workers,
    chunkRows: command.chunkRows,
    chunkLeaseMs: command.chunkLeaseMs,
    onChunkTaken: verifyFailpoint(ctx.io.env),
    signal: ctx.io.signal,
    onProgress: bar
      ? (p) => ctx.io.stderr(`\r${`${p.aggregateType}: ${p.rows.toLocaleString('en-US')}${p.estimatedRows > 0 ? ` of about ${p.estimatedRows.toLocaleString('en-US')}` : ''} rows read`.padEnd(80)}`)
      : undefined,
  });
  if (bar) ctx.io.stderr('\n');
  if (command.metricsFile) await writeMetrics(ctx, report, command.metricsFile);
  if (command.jsonl) {
    for (const type of report.types) for (const m of type.mismatches) ctx.io.stdout(`${JSON.stringify({ aggregateType: type.aggregateType, target: type.target, ...m })}\n`);
    ctx.note(summaryLine(report));
  } else {
    ctx.print(humanReport(report, command.show), report);
  }
  return exitCodeOf(report.outcome);
}

function summaryLine(report: VerifyReport): string {
  return `verify ${report.runId}: ${report.outcome} (${report.types.map((t) => `${t.aggregateType} ${t.outcome}`).join(', ')})`;
}

/** The human report of a run (also used by the demo). */
export function humanReport(report: VerifyReport, show: number): string {
  const lines: string[] = [];
  for (const type of report.types) {
    const c = type.counts;
    lines.push(`${type.aggregateType} (${type.target}, ${type.mode}): ${type.outcome.toUpperCase()}${type.reason ? `: ${type.reason}` : ''}`);
    lines.push(
      `  ${plural(c.rows, type.target === 'projection' ? 'legacy row' : 'read-model row')} read, ${plural(c.compared, 'aggregate')} compared: ${c.matched} matched, ${c.mismatched} mismatched, ` +
        `${c.missingInEvents} missing in events, ${c.missingInLegacy} missing in legacy, ${c.ignored} ignored`,
    );
    for (const warning of type.warnings) lines.push(`  note: ${warning}`);
    const fields = Object.entries(type.fieldCounts);
    if (fields.length > 0) lines.push(`  mismatches per field: ${fields.map(([f, n]) => `${f} ${n}`).join(', ')}`);
    const classes = Object.entries(type.classCounts);
    if (classes.length > 0) lines.push(`  per class: ${classes.map(([k, n]) => `${k} ${n}`).join(', ')}`);
    for (const m of type.mismatches.slice(0, show)) lines.push(...mismatchLines(m));
    if (type.mismatches.length > show) lines.push(`  ... and ${type.mismatches.length - show} more (see them with --show N or --jsonl)`);
  }
  lines.push(`run ${report.runId}: ${report.outcome}${report.outcome === 'empty' ? ' (no legacy rows and no events: nothing was verified)' : ''}`);
  return lines.join('\n');
}

function mismatchLines(m: Mismatch): string[] {
  const kind = m.kind.replace(/-/g, ' ');
  const lines = [`  - ${m.aggregateId}: ${kind} (${m.class})`];
  for (const f of m.fields) {
    const projected = f.projected === 'missing' ? '(no such field)' : f.projected === null ? 'NULL' : JSON.stringify(f.projected);
    lines.push(`      ${f.field}: legacy ${f.legacy === null ? 'NULL' : JSON.stringify(f.legacy)}, projected ${projected}${f.note ? ` (${f.note})` : ''}`);
  }
  for (const sentence of m.explanation) lines.push(`      ${sentence}`);
  return lines;
}

async function showHistory(ctx: CommandContext, types: string[] | undefined): Promise<number> {
  const config = await ctx.config();
  const runs = await ctx.withPool((pool) => recentRuns(toSql(pool), storeTables(config.quotedSchema), { types, limit: 30 }));
  const lines = runs.map(
    (r) =>
      `${r.finishedAt}  ${r.aggregateType.padEnd(16)} ${r.target.padEnd(12)} ${r.mode.padEnd(7)} ${r.outcome.padEnd(10)} ` +
      `${r.counts.matched} matched, ${r.counts.mismatched} mismatched, ${r.counts.missingInEvents} missing in events, ${r.counts.missingInLegacy} missing in legacy, ${r.counts.ignored} ignored` +
      `${r.reason ? ` (${r.reason})` : ''}`,
  );
  ctx.print(lines.length ? lines.join('\n') : 'no verification runs stored yet', { runs });
  return 0;
}

/** The metrics file, replaced whole (written beside it, then renamed) so a scraper never reads half of it. */
async function writeMetrics(ctx: CommandContext, report: VerifyReport, file: string): Promise<void> {
  const config = await ctx.config();
  const lastClean = new Map<string, StoredRun | undefined>();
  await ctx.withPool(async (pool) => {
    for (const type of report.types) {
      lastClean.set(`${type.aggregateType}\u0000${type.target}`, await lastCleanFullRun(toSql(pool), storeTables(config.quotedSchema), type.aggregateType, type.target));
    }
  });
  const target = path.resolve(ctx.io.cwd, file);
  const temporary = `${target}.${process.pid}.tmp`;
  await fs.writeFile(temporary, verifyMetrics(report, lastClean));
  await fs.rename(temporary, target);
}
