/**
 * What changed between two revisions of a plan (`reprise diff A B`): a field-level list of
 * changes between the two normalized plans, what happened to the manifest hash and the pinned
 * files, and a unified diff of the two manifests pretty-printed. Lists of named things (effects,
 * probes, validation queries) are matched by name, so a reorder reads as a reorder.
 */
import { createTwoFilesPatch } from 'diff';
import type { Manifest } from '../schema/manifest.types.js';
import { compileSource, checkPlan, type Compiled } from './compile.js';
import { formatDuration } from './duration.js';
import { PlanInvalidError } from './errors.js';
import type { PlanSource } from './source.js';

export type ChangeOp = '+' | '-' | '~';

/** One field-level change. `before`/`after` are absent for an added/removed element. */
export interface PlanChange {
  op: ChangeOp;
  /** Dotted path in the normalized plan; named list elements as `sideEffects[name=x]`. */
  path: string;
  before?: unknown;
  after?: unknown;
  /** What the line says after the path, for added/removed list elements (`(name: x)`). */
  note?: string;
}

/** A pinned input (or the compiler) whose identity changed. */
export interface FileChange {
  op: ChangeOp;
  /** `plan`, `handler`, `module:<effect>`, `source` or `compiler`. */
  file: string;
  path: string | null;
  before: string | null;
  after: string | null;
}

export interface PlanDiff {
  a: Compiled;
  b: Compiled;
  changes: PlanChange[];
  files: FileChange[];
  hashChanged: boolean;
  /** Unified diff of the two manifests (JSON, indent 2); empty when they are identical. */
  patch: string;
}

/** Lists whose elements are matched by their `name` field rather than by index. */
const NAMED_LISTS = new Set(['sideEffects', 'rate.protect', 'canary.validate']);
/** Normalized fields holding milliseconds that the plan wrote as duration strings. */
const DURATION_PATHS = new Set(['rate.checkEvery', 'abort.stallAfter', 'dedupe.ttl']);

/**
 * Compiles both sides and compares them. Throws PlanInvalidError carrying the problems of both
 * sides when either is invalid, so the author sees everything at once.
 */
export async function diffSources(a: PlanSource, b: PlanSource): Promise<PlanDiff> {
  const problems = [...checkPlan(a).diagnostics, ...checkPlan(b).diagnostics];
  if (problems.length) throw new PlanInvalidError(`${a.file} / ${b.file}`, problems);
  const [ca, cb] = [await compileSource(a), await compileSource(b)];
  return diffCompiled(ca, cb);
}

export function diffCompiled(a: Compiled, b: Compiled): PlanDiff {
  return {
    a,
    b,
    changes: diffPlans(a.plan, b.plan),
    files: diffFiles(a.manifest, b.manifest),
    hashChanged: a.hash !== b.hash,
    patch: manifestPatch(a, b),
  };
}

/** Field-level changes between two normalized plans, in the plan's field order. */
export function diffPlans(a: unknown, b: unknown): PlanChange[] {
  const out: PlanChange[] = [];
  walk(a, b, [], out);
  return out;
}

function walk(a: unknown, b: unknown, path: string[], out: PlanChange[]): void {
  const where = path.join('.');
  if (deepEqual(a, b)) return;
  if (isObj(a) && isObj(b)) {
    const keys = [...Object.keys(a), ...Object.keys(b).filter((k) => !(k in a))];
    for (const k of keys) {
      if (!(k in b)) out.push({ op: '-', path: join(path, k), before: a[k] });
      else if (!(k in a)) out.push({ op: '+', path: join(path, k), after: b[k] });
      else walk(a[k], b[k], [...path, k], out);
    }
    return;
  }
  if (Array.isArray(a) && Array.isArray(b) && NAMED_LISTS.has(where) && [...a, ...b].every((x) => isObj(x) && typeof x.name === 'string')) {
    namedList(a as Array<Record<string, unknown>>, b as Array<Record<string, unknown>>, path, out);
    return;
  }
  if ((a === null || a === undefined) && b !== null && b !== undefined) {
    out.push({ op: '+', path: where, after: b });
    return;
  }
  if ((b === null || b === undefined) && a !== null && a !== undefined) {
    out.push({ op: '-', path: where, before: a });
    return;
  }
  out.push({ op: '~', path: where, before: a, after: b });
}

function namedList(a: Array<Record<string, unknown>>, b: Array<Record<string, unknown>>, path: string[], out: PlanChange[]): void {
  const where = path.join('.');
  const namesA = a.map((x) => x.name as string);
  const namesB = b.map((x) => x.name as string);
  const common = namesA.filter((n) => namesB.includes(n));
  const commonInB = namesB.filter((n) => namesA.includes(n));
  if (common.join('\u0000') !== commonInB.join('\u0000')) {
    out.push({ op: '~', path: `${where} (order)`, before: namesA, after: namesB });
  }
  a.forEach((x, i) => {
    if (!namesB.includes(x.name as string)) out.push({ op: '-', path: `${where}[${i}]`, note: `(name: ${String(x.name)})`, before: x });
  });
  for (const name of common) {
    const x = a.find((e) => e.name === name);
    const y = b.find((e) => e.name === name);
    walk(x, y, [...path.slice(0, -1), `${path[path.length - 1]}[name=${name}]`], out);
  }
  b.forEach((y, i) => {
    if (!namesA.includes(y.name as string)) out.push({ op: '+', path: `${where}[${i}]`, note: `(name: ${String(y.name)})`, after: y });
  });
}

/** The pinned files (and the compiler) whose identity differs. */
export function diffFiles(a: Manifest, b: Manifest): FileChange[] {
  const out: FileChange[] = [];
  const cmp = (file: string, pa: { path: string | null; sha: string } | null, pb: { path: string | null; sha: string } | null): void => {
    if (!pa && !pb) return;
    if (!pa) out.push({ op: '+', file, path: pb!.path, before: null, after: pb!.sha });
    else if (!pb) out.push({ op: '-', file, path: pa.path, before: pa.sha, after: null });
    else if (pa.sha !== pb.sha || pa.path !== pb.path) out.push({ op: '~', file, path: pa.path === pb.path ? pb.path : `${pa.path} -> ${pb.path}`, before: pa.sha, after: pb.sha });
  };
  if (a.compiler.version !== b.compiler.version) out.push({ op: '~', file: 'compiler', path: null, before: a.compiler.version, after: b.compiler.version });
  cmp('plan', { path: null, sha: a.files.plan.sha256 }, { path: null, sha: b.files.plan.sha256 });
  cmp('handler', { path: a.files.handler.path, sha: a.files.handler.sha256 }, { path: b.files.handler.path, sha: b.files.handler.sha256 });
  const effects = [...a.files.modules.map((m) => m.effect), ...b.files.modules.map((m) => m.effect).filter((e) => !a.files.modules.some((m) => m.effect === e))];
  for (const effect of effects) {
    const ma = a.files.modules.find((m) => m.effect === effect);
    const mb = b.files.modules.find((m) => m.effect === effect);
    cmp(`module:${effect}`, ma ? { path: ma.path, sha: ma.sha256 } : null, mb ? { path: mb.path, sha: mb.sha256 } : null);
  }
  const src = (m: Manifest): { path: string; sha: string } | null => (m.files.source ? { path: m.files.source.path, sha: m.files.source.sha256 } : null);
  cmp('source', src(a), src(b));
  return out;
}

/** The manifests as reviewers read them: the canonical JSON parsed and printed with indent 2. */
export function prettyManifest(c: Pick<Compiled, 'bytes'>): string {
  return `${JSON.stringify(JSON.parse(c.bytes), null, 2)}\n`;
}

function manifestPatch(a: Compiled, b: Compiled): string {
  if (a.bytes === b.bytes) return '';
  const patch = createTwoFilesPatch(`a/${manifestName(a)}`, `b/${manifestName(b)}`, prettyManifest(a), prettyManifest(b), a.source.file, b.source.file, { context: 3 });
  return patch.replace(/^=+\n/, '');
}

function manifestName(c: Compiled): string {
  return `${c.plan.name}.r${c.plan.revision}.manifest.json`;
}

// ---------------------------------------------------------------------------------------------
// Text rendering

/** `~ rate.itemsPerSecond: 200 -> 300`, `+ sideEffects[2] (name: x)`, `- canary.validate[0] (name: y)`. */
export function formatChange(c: PlanChange): string {
  if (c.note) return `${c.op} ${c.path} ${c.note}`;
  const v = (x: unknown): string => formatValue(c.path, x);
  if (c.op === '~') return `~ ${c.path}: ${v(c.before)} -> ${v(c.after)}`;
  if (c.op === '+') return `+ ${c.path}: ${v(c.after)}`;
  return `- ${c.path}: ${v(c.before)}`;
}

export function formatFileChange(f: FileChange): string {
  const short = (s: string | null): string => (s === null ? '(none)' : s.length === 64 ? `${s.slice(0, 12)}…` : s);
  const label = f.file === 'compiler' ? 'compiler version' : f.file === 'plan' ? 'plan content sha256' : `${f.file} ${f.path ?? ''}`.trim();
  if (f.op === '+') return `  + ${label}: ${short(f.after)}`;
  if (f.op === '-') return `  - ${label}: ${short(f.before)}`;
  return `  ~ ${label}: ${short(f.before)} -> ${short(f.after)}`;
}

/** The whole human-readable diff: field changes, the hash line with pinned files, the manifest patch. */
export function formatDiff(d: PlanDiff): string {
  const lines: string[] = [];
  lines.push(`${d.a.source.file} -> ${d.b.source.file}`, '');
  if (d.changes.length === 0) lines.push('no plan field changed');
  else lines.push(...d.changes.map(formatChange));
  lines.push('');
  if (d.hashChanged) {
    lines.push(`manifest hash changed: ${d.a.hash} -> ${d.b.hash} (approvals of the old hash do not apply)`);
  } else {
    lines.push(`manifest hash unchanged: ${d.a.hash}`);
  }
  if (d.hashChanged && d.a.plan.name === d.b.plan.name && d.a.plan.revision === d.b.plan.revision) {
    lines.push(`note: the revision is still ${d.b.plan.revision}; any change to a reviewed plan needs a new revision`);
  }
  if (d.files.length) {
    lines.push('pinned files:');
    lines.push(...d.files.map(formatFileChange));
  }
  if (d.patch) lines.push('', d.patch.trimEnd());
  return `${lines.join('\n')}\n`;
}

/** JSON-mode records: one per change, one per pinned-file change, then the summary. */
export function diffRecords(d: PlanDiff): Array<Record<string, unknown>> {
  const records: Array<Record<string, unknown>> = d.changes.map((c) => ({
    level: 'change',
    op: c.op,
    path: c.path,
    ...(c.note ? { name: /\(name: (.*)\)/.exec(c.note)?.[1] } : {}),
    ...('before' in c ? { before: c.before } : {}),
    ...('after' in c ? { after: c.after } : {}),
    line: formatChange(c),
  }));
  for (const f of d.files) records.push({ level: 'file', op: f.op, file: f.file, path: f.path, before: f.before, after: f.after });
  records.push({
    level: 'summary',
    a: d.a.source.file,
    b: d.b.source.file,
    changes: d.changes.length,
    hashChanged: d.hashChanged,
    hashA: d.a.hash,
    hashB: d.b.hash,
    revisionBumped: d.b.plan.revision > d.a.plan.revision,
    files: d.files.length,
    patch: d.patch,
  });
  return records;
}

function formatValue(path: string, x: unknown): string {
  if (typeof x === 'number' && DURATION_PATHS.has(path.replace(/\[[^\]]*\]/g, ''))) return formatDuration(x);
  if (typeof x === 'string' && /^[A-Za-z0-9_.:@/+-]+$/.test(x) && !/^(true|false|null|-?\d.*)$/.test(x)) return x;
  if (x === undefined) return '(absent)';
  if (Array.isArray(x) && x.every((e) => typeof e === 'string' && /^[A-Za-z0-9_.:@/+-]+$/.test(e))) return `[${x.join(', ')}]`;
  const s = JSON.stringify(x);
  return s.length > 200 ? `${s.slice(0, 196)}...${s.slice(-1)}` : s;
}

function join(path: string[], k: string): string {
  return [...path, k].join('.');
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}
