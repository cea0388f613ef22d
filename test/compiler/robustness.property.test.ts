/**
 * A plan author's mistake is never an internal error: for the example plans with random values
 * written anywhere, checkPlan returns diagnostics (never throws), and a plan without diagnostics
 * compiles, renders its runbook and diffs against the original.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { checkPlan, compileSource } from '../../compiler/compile.js';
import { diffCompiled, formatDiff } from '../../compiler/diff.js';
import { renderRunbook } from '../../compiler/runbook.js';
import { root, textSource } from './helpers.js';

const dir = join(root, 'plans', 'examples');
const examples = ['orders-tax-recompute', 'webhook-redelivery', 'notifications-redrive'].map((n) => readFileSync(join(dir, `${n}.yaml`), 'utf8'));

type Path = Array<string | number>;
function paths(v: unknown, p: Path = [], out: Path[] = []): Path[] {
  if (p.length) out.push(p);
  if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...p, Array.isArray(v) ? Number(k) : k], out);
  return out;
}

/** Plausible plan values, so that a good share of mutated plans stay valid and reach compile. */
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom('0s', '5s', '99999999999999999d', '2026-11-12T00:00:00Z', '2026-06-30T23:59:60Z', 'orders', 'events', 'webhooks', 'claims', 'notifications', 'replay', 'suppress', 'dedupe', 'apply', 'none', 'key', '{order_id}', '{', 'select 1 where a = :window_start and b < :window_end', ':nope'),
  fc.constantFrom(0, 1, 3, 0.5, 100, 1e9, 2 ** 53),
);

const mutation = fc.tuple(fc.nat({ max: examples.length - 1 }), fc.array(fc.tuple(fc.nat(), value, fc.boolean()), { minLength: 1, maxLength: 3 }));

describe('robustness', () => {
  it('never throws on a mutated plan; a valid one compiles, renders and diffs', async () => {
    const originals = await Promise.all(examples.map((t) => compileSource(textSource(t, dir))));
    await fc.assert(
      fc.asyncProperty(mutation, async ([which, edits]) => {
        const data = parse(examples[which]!) as Record<string, unknown>;
        for (const [pick, v, remove] of edits) {
          const all = paths(data);
          const path = all[pick % all.length]!;
          let parent: Record<string | number, unknown> = data;
          for (const seg of path.slice(0, -1)) parent = parent[seg] as Record<string | number, unknown>;
          if (remove) delete parent[path.at(-1)!];
          else parent[path.at(-1)!] = v;
        }
        const source = textSource(stringify(data), dir);
        const checked = checkPlan(source);
        for (const d of checked.diagnostics) {
          expect(d.at?.line).toBeGreaterThan(0);
          expect(d.code).toMatch(/^[A-Z_]+$/);
        }
        if (checked.diagnostics.length === 0) {
          const compiled = await compileSource(source);
          expect(renderRunbook(compiled)).toContain(compiled.hash);
          expect(formatDiff(diffCompiled(originals[which]!, compiled))).toContain('manifest hash');
        }
      }),
      { numRuns: 400 },
    );
  });
});
