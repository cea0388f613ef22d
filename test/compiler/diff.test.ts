/** Field-level plan diffs: named lists are matched by name, so a reorder reads as a reorder. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffCompiled, diffPlans, diffRecords, formatChange, formatDiff } from '../../compiler/diff.js';
import { compileSource } from '../../compiler/compile.js';
import { root, textSource } from './helpers.js';

const examples = join(root, 'plans', 'examples');
const text = readFileSync(join(examples, 'orders-tax-recompute.yaml'), 'utf8');
const compile = (t: string, overrides: Record<string, string> = {}) => compileSource(textSource(t, examples, 'plan.yaml', overrides));

describe('diffPlans', () => {
  it('lists changed, added and removed fields with their paths', () => {
    const a = { rate: { itemsPerSecond: 200, live: null }, ticket: 'A' };
    const b = { rate: { itemsPerSecond: 300, live: { itemsPerSecond: 1, capacity: 2 } }, ticket: null };
    expect(diffPlans(a, b).map(formatChange)).toEqual([
      '~ rate.itemsPerSecond: 200 -> 300',
      '+ rate.live: {"itemsPerSecond":1,"capacity":2}',
      '- ticket: A',
    ]);
  });

  it('matches effects by name: a reorder is one line, an edit names the effect, additions and removals give the index and name', () => {
    const e = (name: string, backfill = 'replay') => ({ name, backfill });
    const a = { sideEffects: [e('a'), e('b'), e('c')] };
    const b = { sideEffects: [e('b', 'suppress'), e('a'), e('x')] };
    expect(diffPlans(a, b).map(formatChange)).toEqual([
      '~ sideEffects (order): [a, b, c] -> [b, a, x]',
      '- sideEffects[2] (name: c)',
      '~ sideEffects[name=b].backfill: replay -> suppress',
      '+ sideEffects[2] (name: x)',
    ]);
  });

  it('does not report a reorder when only additions or removals moved indexes', () => {
    const a = { rate: { protect: [{ name: 'p1', max: 1 }, { name: 'p2', max: 2 }] } };
    const b = { rate: { protect: [{ name: 'p2', max: 3 }] } };
    expect(diffPlans(a, b).map(formatChange)).toEqual(['- rate.protect[0] (name: p1)', '~ rate.protect[name=p2].max: 2 -> 3']);
  });

  it('prints durations as durations', () => {
    expect(diffPlans({ abort: { stallAfter: 300_000 } }, { abort: { stallAfter: 600_000 } }).map(formatChange)).toEqual(['~ abort.stallAfter: 5m -> 10m']);
  });

  it('is empty for equal plans', () => {
    expect(diffPlans({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toEqual([]);
  });
});

describe('diffCompiled', () => {
  it('reports the hash, the pinned files and a unified diff of the manifests', async () => {
    const a = await compile(text);
    const b = await compile(text.replace('revision: 1', 'revision: 2').replace('itemsPerSecond: 200', 'itemsPerSecond: 300'), {
      './orders-tax-recompute.handler.ts': `${readFileSync(join(examples, 'orders-tax-recompute.handler.ts'), 'utf8')}\n// changed\n`,
    });
    const d = diffCompiled(a, b);
    expect(d.hashChanged).toBe(true);
    expect(d.changes.map(formatChange)).toEqual(['~ revision: 1 -> 2', '~ rate.itemsPerSecond: 200 -> 300']);
    expect(d.files.map((f) => f.file)).toEqual(['plan', 'handler']);
    expect(d.patch).toContain('--- a/orders-tax-recompute.r1.manifest.json');
    expect(d.patch).toContain('+++ b/orders-tax-recompute.r2.manifest.json');
    expect(d.patch).toContain('-      "itemsPerSecond": 200,');
    expect(d.patch).toContain('+      "itemsPerSecond": 300,');
    const out = formatDiff(d);
    expect(out).toContain(`manifest hash changed: ${a.hash} -> ${b.hash}`);
    expect(out).toMatch(/ {2}~ handler \.\/orders-tax-recompute\.handler\.ts: [0-9a-f]{12}… -> [0-9a-f]{12}…/);
    const summary = diffRecords(d).at(-1)!;
    expect(summary).toMatchObject({ level: 'summary', changes: 2, hashChanged: true, hashA: a.hash, hashB: b.hash, revisionBumped: true, files: 2 });
  });

  it('says when nothing changed', async () => {
    const a = await compile(text);
    const d = diffCompiled(a, await compile(`# a comment\n${text}`));
    expect(d.changes).toEqual([]);
    expect(d.files).toEqual([]);
    expect(d.patch).toBe('');
    expect(formatDiff(d)).toContain(`no plan field changed\n\nmanifest hash unchanged: ${a.hash}\n`);
  });

  it('notes a change made without a new revision', async () => {
    const d = diffCompiled(await compile(text), await compile(text.replace('chunkSize: 500', 'chunkSize: 400')));
    expect(formatDiff(d)).toContain('note: the revision is still 1; any change to a reviewed plan needs a new revision');
  });
});
