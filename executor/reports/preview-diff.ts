/**
 * The dry-run preview of a sql effect: the rows its `preview` query returns before and after the
 * statement, as a unified diff of their pretty JSON, so a reviewer reads exactly what would
 * change (`-` the row as it is, `+` the row as it would be).
 */
import { structuredPatch } from 'diff';

/** One row (column -> value), several rows, or none (`null` / `[]`). */
export type PreviewRows = Record<string, unknown> | ReadonlyArray<Record<string, unknown>> | null | undefined;

export interface PreviewDiffOptions {
  /** Unchanged lines shown around each change. @defaultValue 3 */
  context?: number;
  /** Header labels. @defaultValue `before`, `after` */
  labels?: { before: string; after: string };
}

/**
 * A unified diff (`--- before`, `+++ after`, `@@` hunks) of the rows' pretty JSON, one object
 * per row in the order given; the empty string when nothing would change. Values JSON cannot
 * hold are shown as text: bigints as digits, byte arrays as `\x` hex, dates in ISO 8601.
 */
export function previewDiff(before: PreviewRows, after: PreviewRows, opts: PreviewDiffOptions = {}): string {
  const a = rowsText(before);
  const b = rowsText(after);
  if (a === b) return '';
  const labels = opts.labels ?? { before: 'before', after: 'after' };
  const patch = structuredPatch(labels.before, labels.after, a, b, undefined, undefined, { context: opts.context ?? 3 });
  const out = [`--- ${labels.before}`, `+++ ${labels.after}`];
  for (const h of patch.hunks) {
    out.push(`@@ -${range(h.oldStart, h.oldLines)} +${range(h.newStart, h.newLines)} @@`);
    for (const line of h.lines) if (!line.startsWith('\\')) out.push(line);
  }
  return `${out.join('\n')}\n`;
}

/** The rows as the diff shows them: each row's pretty JSON, one after another. */
export function rowsText(rows: PreviewRows): string {
  const list = rows == null ? [] : Array.isArray(rows) ? rows : [rows as Record<string, unknown>];
  return list.map((r) => `${JSON.stringify(r, jsonSafe, 2)}\n`).join('');
}

/** Rows as plain JSON values (what a report stores in `before` / `after`). */
export function plainRows(rows: PreviewRows): Array<Record<string, unknown>> | null {
  if (rows == null) return null;
  const list = Array.isArray(rows) ? rows : [rows as Record<string, unknown>];
  return JSON.parse(JSON.stringify(list, jsonSafe)) as Array<Record<string, unknown>>;
}

function range(start: number, lines: number): string {
  // Unified diff convention: an empty side is `start-1,0`; a one-line side omits the count.
  if (lines === 0) return `${Math.max(0, start - 1)},0`;
  return lines === 1 ? `${start}` : `${start},${lines}`;
}

function jsonSafe(this: unknown, key: string, value: unknown): unknown {
  const raw = key === '' ? value : (this as Record<string, unknown>)[key];
  if (typeof raw === 'bigint') return raw.toString();
  if (raw instanceof Uint8Array) return `\\x${Buffer.from(raw).toString('hex')}`;
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return value;
}
