/**
 * The Markdown rendering of a stage report (`<run>.<stage>.report.md`), written for the reviewer
 * who signs the next stage and for the PR comment: summary, count guard, items, the effect table
 * (policy x status), errors with samples, throttle time, validations, fingerprints, canary keys
 * and, for a dry-run, what each previewed sql effect would change as ```diff blocks.
 *
 * Everything that comes from data (item keys, error messages, probe and effect names) is
 * escaped, so a hostile key cannot break a table, open a link or inject HTML.
 */
import type { Report } from '../../schema/report.types.js';
import { formatCount, formatElapsed, formatPercent, formatRate, truncate } from './format.js';
import { EFFECT_STATUSES } from './report.js';

/** Longest error message a table cell shows. */
const MESSAGE_MAX = 300;
/** Previews shown in full; the rest are counted. */
const PREVIEW_MAX = 20;

export function renderReportMarkdown(r: Report): string {
  const sections = [
    header(r),
    abortSection(r),
    itemsSection(r),
    countSection(r),
    effectsSection(r),
    errorsSection(r),
    throttleSection(r),
    throughputSection(r),
    canarySection(r),
    validationsSection(r),
    fingerprintsSection(r),
    previewSection(r),
    `---\nReport hash \`${r.hash}\` · manifest \`${r.manifest}\``,
  ].filter((s): s is string => Boolean(s));
  return `${sections.join('\n\n')}\n`;
}

const OUTCOME_MARK: Record<Report['outcome'], string> = {
  completed: '✅ completed',
  aborted: '🛑 aborted',
  paused: '⏸️ paused',
  failed: '❌ failed',
  'validation-failed': '❌ validation failed',
};

function header(r: Report): string {
  const rows: Array<[string, string]> = [
    ['Run', cellCode(r.runId)],
    ['Plan', `${text(r.plan)} revision ${r.revision}`],
    ['Stage', r.stage],
    ['Outcome', `**${OUTCOME_MARK[r.outcome]}**`],
    ['Started', r.startedAt],
    ['Finished', r.finishedAt],
    ['Duration', formatElapsed(r.durationMs)],
    ['Workers', String(r.workers)],
    ['Manifest', cellCode(r.manifest)],
  ];
  return [`# reprise report: ${text(r.plan)} r${r.revision} · ${r.stage} · ${OUTCOME_MARK[r.outcome]}`, table(rows[0] ?? ['', ''], rows.slice(1), ['l', 'l'])].join('\n\n');
}

function abortSection(r: Report): string | null {
  if (!r.abort) return null;
  return `> **Stopped early** (${text(r.abort.reason)}): ${text(r.abort.detail)}`;
}

function itemsSection(r: Report): string {
  const c = r.counts;
  const row = [c.selected, c.processed, c.succeeded, c.failed, c.skippedOutsideWindow, c.remaining].map(formatCount);
  return ['## Items', table(['selected', 'processed', 'succeeded', 'failed', 'skipped (outside window)', 'remaining'], [row], 'r')].join('\n\n');
}

function countSection(r: Report): string {
  if (!r.count) return '## Count guard\n\nNo selection count for this stage.';
  const { value, expect, countedAt } = r.count;
  const inside = value >= expect.min && value <= expect.max;
  return [
    '## Count guard',
    `Counted **${formatCount(value)}** items at ${countedAt}; the plan expects ${formatCount(expect.min)} to ${formatCount(expect.max)}: ${inside ? '✅ within bounds' : '❌ outside the bounds'}.`,
  ].join('\n\n');
}

function effectsSection(r: Report): string {
  if (r.effects.length === 0) return '## Side effects\n\nThe plan declares no side effects.';
  const head = ['effect', 'kind', 'policy', 'delivery', 'live', ...EFFECT_STATUSES];
  const rows = r.effects.map((e) => [cellCode(e.name), e.kind, `**${e.policy}**`, e.delivery ?? '–', e.live, ...EFFECT_STATUSES.map((s) => formatCount(e.counts[s]))]);
  const align = head.map((_, i) => (i < 5 ? 'l' : 'r') as 'l' | 'r');
  return ['## Side effects', 'Calls by backfill policy and what the effects gate did with them (ledger status).', table(head, rows, align)].join('\n\n');
}

function errorsSection(r: Report): string {
  const { total, samples } = r.errors;
  if (total === 0) return '## Errors\n\nNo item failed.';
  const parts = [`## Errors`, `**${formatCount(total)}** item${total === 1 ? '' : 's'} failed${r.counts.processed ? ` (${formatPercent(total / r.counts.processed)} of processed)` : ''}.`];
  if (samples.length > 0) {
    parts.push(`Samples (${samples.length} of ${formatCount(total)}, the first and the most recent):`);
    parts.push(table(['item', 'attempt', 'at', 'message'], samples.map((s) => [cellCode(s.itemKey), String(s.attempt), s.at, text(truncate(s.message, MESSAGE_MAX))]), ['l', 'r', 'l', 'l']));
  }
  return parts.join('\n\n');
}

function throttleSection(r: Report): string {
  const { throttledMs, episodes } = r.throttle;
  if (throttledMs === 0 && episodes.length === 0) return '## Throttle\n\nNever throttled by a protect probe.';
  const share = r.durationMs > 0 ? ` (${formatPercent(throttledMs / r.durationMs)} of the stage)` : '';
  const parts = ['## Throttle', `Throttled for **${formatElapsed(throttledMs)}**${share} in ${episodes.length} episode${episodes.length === 1 ? '' : 's'}.`];
  if (episodes.length > 0) {
    parts.push(table(['probe', 'value', 'max', 'from', 'to'], episodes.map((e) => [cellCode(e.probe), String(e.value), String(e.max), e.from, e.to ?? 'still throttled']), ['l', 'r', 'r', 'l', 'l']));
  }
  return parts.join('\n\n');
}

function throughputSection(r: Report): string | null {
  if (r.throughput.length === 0) return null;
  const width = r.throughput.length > 1 ? (r.throughput[1]?.t ?? 1) : Math.max(r.durationMs / 1000, 1);
  const peak = Math.max(...r.throughput.map((b) => b.items)) / width;
  const avg = r.durationMs > 0 ? r.counts.processed / (r.durationMs / 1000) : 0;
  return `## Throughput\n\nAverage **${formatRate(avg)} items/s**, peak ${formatRate(peak)} items/s (over ${width}s buckets). The HTML report charts it.`;
}

function canarySection(r: Report): string | null {
  if (!r.canary) return null;
  const keys = r.canary.keys.length ? r.canary.keys.map((k) => code(k)).join(', ') : '(none)';
  return `## Canary\n\n${formatCount(r.canary.size)} items picked by \`${r.canary.pick}\`; first keys: ${keys}.`;
}

function validationsSection(r: Report): string | null {
  if (r.validations.length === 0) return r.stage === 'canary' ? '## Validations\n\nThe plan declares no validation queries.' : null;
  const rows = r.validations.map((v) => [cellCode(v.name), v.ok ? '✅ pass' : '❌ fail', v.detail === null ? '' : text(truncate(v.detail, MESSAGE_MAX))]);
  return ['## Validations', table(['validation', 'result', 'detail'], rows, ['l', 'l', 'l'])].join('\n\n');
}

function fingerprintsSection(r: Report): string | null {
  const entries = Object.entries(r.fingerprints).filter((e): e is [string, NonNullable<(typeof e)[1]>] => e[1] !== undefined);
  if (entries.length === 0) return null;
  const rows = entries.map(([name, f]) =>
    f.kind === 'postgres' ? [cellCode(name), 'postgres', `system_identifier ${cellCode(f.systemIdentifier)}, database ${cellCode(f.database)}`] : [cellCode(name), 'redis', `run_id ${cellCode(f.runId)}`],
  );
  return ['## Target fingerprints', 'An approval that binds this report is valid only against these servers.', table(['connection', 'kind', 'identity'], rows, ['l', 'l', 'l'])].join('\n\n');
}

function previewSection(r: Report): string | null {
  if (r.preview.length === 0) return null;
  const parts = ['## Preview of sql effects', 'Rows the `preview` query returns before (`-`) and after (`+`) each effect, run inside a transaction that was rolled back: nothing was committed.'];
  for (const p of r.preview.slice(0, PREVIEW_MAX)) {
    parts.push(`### ${code(p.effect)} · item ${code(p.itemKey)}`);
    parts.push(`Arguments: ${code(JSON.stringify(p.args))}`);
    if (p.method === 'estimated') parts.push(`_Estimated: ${text(p.note ?? 'the target refused the statement')}; the arguments were laid over the columns of the same names._`);
    parts.push(p.diff ? fence('diff', p.diff) : p.before === null || p.after === null ? `_Preview rows could not be read${p.note ? `: ${text(p.note)}` : ''}._` : '_No change._');
  }
  if (r.preview.length > PREVIEW_MAX) parts.push(`…and ${r.preview.length - PREVIEW_MAX} more previews in the JSON report.`);
  return parts.join('\n\n');
}

// ---------------------------------------------------------------------------------------------
// Markdown primitives

/** Plain text from data: every Markdown-significant character escaped, on one line. */
export function text(s: string): string {
  return s
    .replace(/\r\n?|\n/g, ' ')
    .replace(/[\\`*_[\]<>|~&]/g, (c) => `\\${c}`);
}

/**
 * An inline code span that holds any text (its fence is longer than any backtick run inside).
 * In a table cell (`cell`), `|` is escaped: GFM splits cells before it parses code spans.
 */
export function code(s: string, cell = false): string {
  const oneLine = s.replace(/\r\n?|\n/g, ' ');
  const longest = Math.max(0, ...[...oneLine.matchAll(/`+/g)].map((m) => m[0].length));
  const ticks = '`'.repeat(longest + 1);
  const pad = oneLine.startsWith('`') || oneLine.endsWith('`') || oneLine === '' ? ' ' : '';
  return `${ticks}${pad}${cell ? oneLine.replace(/\|/g, '\\|') : oneLine}${pad}${ticks}`;
}

/** A fenced code block whose fence no line of the content can close. */
export function fence(lang: string, body: string): string {
  const longest = Math.max(0, ...[...body.matchAll(/^ {0,3}(`{3,})/gm)].map((m) => m[1]?.length ?? 0));
  const f = '`'.repeat(Math.max(3, longest + 1));
  return `${f}${lang}\n${body.endsWith('\n') ? body : `${body}\n`}${f}`;
}

const cellCode = (s: string): string => code(s, true);

function table(head: string[], rows: string[][], align: Array<'l' | 'r'> | 'r'): string {
  const al = (i: number): 'l' | 'r' => (align === 'r' ? 'r' : (align[i] ?? 'l'));
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map((_, i) => (al(i) === 'r' ? '---:' : '---'))), ...rows.map(line)].join('\n');
}
