/**
 * Fuzzing the plan compiler with fast-check: more than 10,000 generated plans per run — the
 * example plans mutated as text (lines deleted, duplicated, re-indented, truncated, garbage
 * bytes inserted, scalars replaced by random ones, values retyped) and as YAML trees (keys
 * deleted, duplicated, retyped, random scalars, re-serialized with random indentation), plus
 * arbitrary YAML-ish text and hostile YAML (deep nesting, alias bombs, tags, huge scalars).
 * Every one goes through `checkPlan` in-process: it returns diagnostics and never throws, each
 * case within a time bound. A sample goes through `reprise validate` as a subprocess: exit 0 or
 * 2, `error[CODE]` lines for every problem, never a stack trace.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { checkPlan } from '../../compiler/compile.js';
import { sha256Hex, type PlanSource } from '../../compiler/source.js';

const root = resolve(import.meta.dirname, '..', '..');
const examplesDir = join(root, 'plans', 'examples');
const examples = readdirSync(examplesDir).filter((f) => f.endsWith('.yaml')).sort().map((f) => readFileSync(join(examplesDir, f), 'utf8'));
const BIN = join(root, 'bin', 'reprise.js');
/** Per case: checkPlan on a few kilobytes of YAML takes milliseconds; a hang or a blow-up is far past this. */
const CASE_BOUND_MS = 2_000;
const RUNS = { text: 4_000, tree: 4_000, arbitrary: 2_000, hostile: 300, cli: 50 };

function source(text: string): PlanSource {
  return {
    file: 'fuzz.yaml',
    text,
    dir: examplesDir,
    exists: (rel) => {
      try {
        readFileSync(join(examplesDir, rel));
        return true;
      } catch {
        return false;
      }
    },
    sha256: async (rel) => sha256Hex(readFileSync(join(examplesDir, rel))),
  };
}

let cases = 0;
let valid = 0;
let slowest = 0;
/** checkPlan never throws, stays within its bound, and every diagnostic is well formed. */
function check(text: string): void {
  const started = performance.now();
  const checked = checkPlan(source(text));
  const ms = performance.now() - started;
  slowest = Math.max(slowest, ms);
  cases++;
  expect(ms, 'checkPlan took too long').toBeLessThan(CASE_BOUND_MS);
  if (checked.diagnostics.length === 0) valid++;
  for (const d of checked.diagnostics) {
    expect(d.code).toMatch(/^[A-Z][A-Z0-9_]*$/);
    expect(typeof d.message).toBe('string');
    if (d.at) expect(d.at.line).toBeGreaterThan(0);
  }
}

const scalar = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', '~', 'null', 'true', 'no', 'yes', '0', '-1', '1e999', '.nan', '0x1F', '0o17', '2026-13-45', '2026-11-12T00:00:00Z', '5m', '500ms', '90d', '-5s', '99999999999999999999d',
    'replay', 'suppress', 'dedupe', 'apply', 'none', 'at-most-once', 'at-least-once', 'redis', 'postgres', 'sql', 'http', 'module', 'redis-stream', 'key', 'first', 'sample',
    '{order_id}', '{', '}', '{{x}}', ':window_start', ':nope', "'); drop table orders; --", '$$', '"', "'", '\\', '[', ']', '{}', '[]', '&a', '*a', '!!binary AAAA', '!!str', '? x', '|', '>', '#', '- x', 'a: b', '\t'),
  fc.integer().map(String),
  fc.double().map(String),
);

// ---- text mutations -----------------------------------------------------------------------------
type TextOp =
  | { op: 'truncate'; at: number }
  | { op: 'garbage'; at: number; text: string }
  | { op: 'delete-line'; at: number }
  | { op: 'duplicate-line'; at: number }
  | { op: 'indent'; at: number; by: number; tab: boolean }
  | { op: 'scalar'; at: number; value: string }
  | { op: 'retype'; at: number; value: string };

const textOp: fc.Arbitrary<TextOp> = fc.oneof(
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('garbage' as const), at: fc.nat(), text: fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ unit: 'grapheme', maxLength: 12 }), fc.constantFrom('\u0000', '\uFEFF', '\r', '\t', '\u2028', ': ', '- ', '---\n', '...\n', '%YAML 1.1\n', '&x ', '*x', '!tag ')) }),
  fc.record({ op: fc.constant('delete-line' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('duplicate-line' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('indent' as const), at: fc.nat(), by: fc.integer({ min: -6, max: 6 }), tab: fc.boolean() }),
  fc.record({ op: fc.constant('scalar' as const), at: fc.nat(), value: scalar }),
  fc.record({ op: fc.constant('retype' as const), at: fc.nat(), value: fc.constantFrom('[]', '{}', '[1, 2]', '{ a: 1 }', '\n  - x\n  - y', '\n  k: v', 'null', '1', 'true', '"text"') }),
);

function applyTextOps(text: string, ops: TextOp[]): string {
  let t = text;
  for (const o of ops) {
    const lines = t.split('\n');
    const i = lines.length ? o.at % lines.length : 0;
    switch (o.op) {
      case 'truncate': t = t.slice(0, t.length ? o.at % t.length : 0); break;
      case 'garbage': { const at = t.length ? o.at % t.length : 0; t = t.slice(0, at) + o.text + t.slice(at); break; }
      case 'delete-line': lines.splice(i, 1); t = lines.join('\n'); break;
      case 'duplicate-line': lines.splice(i, 0, lines[i] ?? ''); t = lines.join('\n'); break;
      case 'indent': {
        const l = lines[i] ?? '';
        lines[i] = o.by >= 0 ? (o.tab ? '\t' : ' ').repeat(o.by) + l : l.replace(new RegExp(`^ {0,${-o.by}}`), '');
        t = lines.join('\n');
        break;
      }
      case 'scalar':
      case 'retype': {
        // The value of the i-th (or next) `key: value` line.
        for (let k = 0; k < lines.length; k++) {
          const j = (i + k) % lines.length;
          const m = /^(\s*(?:- )?[A-Za-z_][\w-]*:)\s*\S.*$/.exec(lines[j]!);
          if (m) { lines[j] = `${m[1]} ${o.value}`; break; }
        }
        t = lines.join('\n');
        break;
      }
    }
  }
  return t;
}

// ---- tree mutations -----------------------------------------------------------------------------
type Path = Array<string | number>;
function paths(v: unknown, p: Path = [], out: Path[] = []): Path[] {
  if (p.length) out.push(p);
  if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...p, Array.isArray(v) ? Number(k) : k], out);
  return out;
}
type TreeOp = { op: 'delete' | 'set' | 'duplicate' | 'retype'; pick: number; value: unknown };
const treeOp: fc.Arbitrary<TreeOp> = fc.record({
  op: fc.constantFrom('delete' as const, 'set' as const, 'duplicate' as const, 'retype' as const),
  pick: fc.nat(),
  value: fc.oneof(scalar, fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(0, 1, 2, -1, 0.5, 1e9, 2 ** 53, null, true, [], {})),
});

function applyTreeOps(text: string, ops: TreeOp[], indent: number): string {
  const data = parse(text) as Record<string, unknown>;
  for (const o of ops) {
    const all = paths(data);
    if (!all.length) break;
    const path = all[o.pick % all.length]!;
    let parent = data as Record<string | number, unknown>;
    for (const seg of path.slice(0, -1)) parent = parent[seg] as Record<string | number, unknown>;
    const last = path.at(-1)!;
    if (o.op === 'delete') delete parent[last];
    else if (o.op === 'set') parent[last] = o.value;
    else if (o.op === 'retype') { const v = parent[last]; parent[last] = Array.isArray(v) ? { ...v } : v && typeof v === 'object' ? Object.values(v) : [v]; }
    else if (!Array.isArray(parent)) parent[`${String(last)}_`] = parent[last];
    else parent.push(parent[last]);
  }
  let out = stringify(data, { indent });
  // A duplicated key, spelled as such (stringify never writes one).
  if (ops.some((o) => o.op === 'duplicate')) out = out.replace(/^(\w+)_:/m, '$1:');
  return out;
}

// ---- arbitrary and hostile text -------------------------------------------------------------------
const arbitraryText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 400 }),
  fc.string({ unit: 'grapheme', maxLength: 400 }),
  fc.jsonValue({ maxDepth: 4 }).map((v) => stringify(v)),
  fc.array(fc.tuple(fc.constantFrom('reprise', 'name', 'revision', 'selection', 'sideEffects', 'rate', 'dedupe', 'checkpoint', 'canary', 'approvals', 'abort', 'liveBoundary', 'source', 'processing', 'connections', 'x'), scalar), { maxLength: 20 })
    .map((kv) => kv.map(([k, v]) => `${k}: ${v}`).join('\n')),
);
const hostileText = fc.oneof(
  fc.integer({ min: 100, max: 20_000 }).map((d) => `${'['.repeat(d)}${']'.repeat(d)}`),
  fc.integer({ min: 100, max: 5_000 }).map((d) => Array.from({ length: d }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n')),
  fc.integer({ min: 2, max: 12 }).map((n) => ['a0: &a0 [x, x, x, x, x, x, x, x, x]', ...Array.from({ length: n }, (_, i) => `a${i + 1}: &a${i + 1} [${Array(9).fill(`*a${i}`).join(', ')}]`)].join('\n')),
  fc.integer({ min: 10_000, max: 2_000_000 }).map((n) => `name: ${'x'.repeat(n)}\nreprise: 1\n`),
  fc.constantFrom('!!js/function "function(){}"', 'reprise: !!binary AAAA', '--- !<tag:yaml.org,2002:map>\n', '<<: *nope', '? [a, b]\n: c', 'a: !!set {x, y}', '%TAG ! tag:x,\n---\n!a b', '\uFEFFreprise: 1', 'reprise: 1\n---\nreprise: 2'),
);

describe('fuzz: plan YAML through checkPlan (in process)', () => {
  it(`${RUNS.text} text mutations of the example plans`, () => {
    fc.assert(fc.property(fc.nat({ max: examples.length - 1 }), fc.array(textOp, { minLength: 1, maxLength: 4 }), (w, ops) => check(applyTextOps(examples[w]!, ops))), { numRuns: RUNS.text });
  });
  it(`${RUNS.tree} tree mutations of the example plans, re-serialized with random indentation`, () => {
    fc.assert(fc.property(fc.nat({ max: examples.length - 1 }), fc.array(treeOp, { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 8 }), (w, ops, indent) => check(applyTreeOps(examples[w]!, ops, indent))), { numRuns: RUNS.tree });
  });
  it(`${RUNS.arbitrary} arbitrary texts`, () => {
    fc.assert(fc.property(arbitraryText, check), { numRuns: RUNS.arbitrary });
  });
  it(`${RUNS.hostile} hostile YAML (deep nesting, alias bombs, tags, huge scalars)`, () => {
    fc.assert(fc.property(hostileText, check), { numRuns: RUNS.hostile });
    console.log(`plan fuzz: ${cases} plans checked in process, ${valid} valid, slowest ${slowest.toFixed(0)} ms`);
    expect(cases).toBeGreaterThanOrEqual(10_000);
  });
});

describe('fuzz: plan YAML through `reprise validate` (subprocess)', () => {
  it(`${RUNS.cli} generated plans: exit 0 or 2, error[CODE] lines, no stack trace`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'reprise-fuzz-plans-'));
    for (const f of readdirSync(examplesDir)) if (!f.endsWith('.yaml')) copyFileSync(join(examplesDir, f), join(dir, f));
    const gen = fc.oneof(
      fc.tuple(fc.nat({ max: examples.length - 1 }), fc.array(textOp, { minLength: 1, maxLength: 4 })).map(([w, ops]) => applyTextOps(examples[w]!, ops)),
      fc.tuple(fc.nat({ max: examples.length - 1 }), fc.array(treeOp, { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 8 })).map(([w, ops, i]) => applyTreeOps(examples[w]!, ops, i)),
      arbitraryText,
    );
    const texts = fc.sample(gen, { numRuns: RUNS.cli, seed: 7 });
    texts.forEach((t, i) => writeFileSync(join(dir, `p${i}.yaml`), t));
    const files = texts.map((_, i) => join(dir, `p${i}.yaml`));
    // A few files per process keeps the sample quick; each file's verdict is still separate.
    for (let i = 0; i < files.length; i += 5) {
      const batch = files.slice(i, i + 5);
      const r = spawnSync(process.execPath, [BIN, 'validate', ...batch], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } });
      const out = `${r.stdout}${r.stderr}`;
      expect(r.signal, `validate hung or crashed on ${batch.join(' ')}`).toBeNull();
      expect([0, 2], out).toContain(r.status);
      // Plan problems print `  at plan.yaml:L:C`; a stack trace has `at fn (file:L:C)` or `at file://…`.
      expect(out).not.toMatch(/^\s+at .*\(.*:\d+:\d+\)$|^\s+at (?:file:|node:)|INTERNAL|this is a bug/m);
      for (const f of batch) {
        const single = spawnSync(process.execPath, [BIN, '--json', 'validate', f], { encoding: 'utf8', timeout: 60_000 });
        expect(single.signal).toBeNull();
        expect([0, 2]).toContain(single.status);
        const lines = single.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level?: string; ok?: boolean; code?: string });
        const summary = lines.find((l) => l.level === 'summary');
        expect(summary?.ok).toBe(single.status === 0);
      }
      if (r.status === 2) expect(out).toMatch(/error\[[A-Z][A-Z0-9_]*\]/);
    }
  }, 300_000);
});
