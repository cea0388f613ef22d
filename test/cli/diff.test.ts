/** `reprise diff` as a subprocess, on two files and on `git-ref:path` in a throwaway repository. */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, noStackTrace, reprise, root } from './run.js';

const tmp = mkdtempSync(join(tmpdir(), 'reprise-diff-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const examples = join(root, 'plans', 'examples');
const plan = readFileSync(join(examples, 'orders-tax-recompute.yaml'), 'utf8');
const handler = readFileSync(join(examples, 'orders-tax-recompute.handler.ts'), 'utf8');

/** A plan directory with the example and a second revision of it. */
function twoRevisions(dir: string): { a: string; b: string } {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'orders-tax-recompute.handler.ts'), handler);
  writeFileSync(join(dir, 'a.yaml'), plan);
  writeFileSync(join(dir, 'b.yaml'), plan.replace('revision: 1', 'revision: 2').replace('itemsPerSecond: 200', 'itemsPerSecond: 300'));
  return { a: join(dir, 'a.yaml'), b: join(dir, 'b.yaml') };
}

describe('reprise diff (files)', () => {
  it('prints the field changes, the hash line and a unified diff of the manifests; exits 0', () => {
    const { a, b } = twoRevisions(join(tmp, 'files'));
    const r = reprise(['diff', a, b]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toContain('~ revision: 1 -> 2');
    expect(lines).toContain('~ rate.itemsPerSecond: 200 -> 300');
    expect(lines.find((l) => l.startsWith('manifest hash changed: sha256:'))).toBeDefined();
    expect(lines).toContain('--- a/orders-tax-recompute.r1.manifest.json\t' + a);
    expect(lines).toContain('+++ b/orders-tax-recompute.r2.manifest.json\t' + b);
    expect(lines).toContain('-      "itemsPerSecond": 200,');
    expect(lines).toContain('+      "itemsPerSecond": 300,');
    expect(r.stdout.indexOf('~ revision')).toBeLessThan(r.stdout.indexOf('manifest hash changed'));
    expect(r.stdout.indexOf('manifest hash changed')).toBeLessThan(r.stdout.indexOf('--- a/'));
  });

  it('matches effects by name, so a reorder reads as a reorder', () => {
    const dir = join(tmp, 'reorder');
    const { a } = twoRevisions(dir);
    const start = plan.indexOf('  - name: write_invoice');
    const mid = plan.indexOf('  - name: email_customer');
    const end = plan.indexOf('  - name: publish_invoice_corrected');
    writeFileSync(join(dir, 'c.yaml'), plan.slice(0, start) + plan.slice(mid, end) + plan.slice(start, mid) + plan.slice(end));
    const r = reprise(['diff', a, join(dir, 'c.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('~ sideEffects (order): [write_invoice, email_customer, publish_invoice_corrected] -> [email_customer, write_invoice, publish_invoice_corrected]\n');
    expect(r.stdout).not.toContain('sideEffects[name=');
  });

  it('with --json prints one object per change and a summary', () => {
    const { a, b } = twoRevisions(join(tmp, 'json'));
    const r = reprise(['diff', '--json', a, b]);
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(lines.filter((l) => l.level === 'change')).toEqual([
      { level: 'change', op: '~', path: 'revision', before: 1, after: 2, line: '~ revision: 1 -> 2' },
      { level: 'change', op: '~', path: 'rate.itemsPerSecond', before: 200, after: 300, line: '~ rate.itemsPerSecond: 200 -> 300' },
    ]);
    const summary = lines.at(-1)!;
    expect(summary).toMatchObject({ level: 'summary', changes: 2, hashChanged: true, revisionBumped: true });
    expect(String(summary.patch)).toContain('+      "itemsPerSecond": 300,');
  });

  it('exits 0 when nothing changed', () => {
    const { a } = twoRevisions(join(tmp, 'same'));
    const r = reprise(['diff', a, a]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('no plan field changed');
    expect(r.stdout).toContain('manifest hash unchanged: sha256:');
  });

  it('prints the errors of an invalid side like validate, and exits 2', () => {
    const { a } = twoRevisions(join(tmp, 'invalid'));
    const r = reprise(['diff', a, join(root, 'test/compiler/fixtures/three-mistakes.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n').filter((l) => l.startsWith('error['))).toHaveLength(3);
    expect(r.stderr).toContain('three-mistakes.yaml:18:3');
  });

  it('reports a missing file as invalid input', () => {
    const r = reprise(['diff', 'plans/examples/orders-tax-recompute.yaml', 'plans/nope.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error\[PLAN_NOT_FOUND\]/);
    expect(noStackTrace(r.stderr)).toBe(true);
  });
});

describe('reprise diff (git-ref:path)', () => {
  const repo = join(tmp, 'repo');
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

  beforeAll(() => {
    mkdirSync(join(repo, 'plans'), { recursive: true });
    git('init', '-q', '-b', 'main');
    git('config', 'user.email', 'ci@example.com');
    git('config', 'user.name', 'ci');
    git('config', 'commit.gpgsign', 'false');
    for (const f of ['orders-tax-recompute.yaml', 'orders-tax-recompute.handler.ts']) copyFileSync(join(examples, f), join(repo, 'plans', f));
    git('add', '.');
    git('commit', '-q', '-m', 'r1');
    // The working tree: revision 2 with a handler change.
    writeFileSync(join(repo, 'plans', 'orders-tax-recompute.yaml'), plan.replace('revision: 1', 'revision: 2').replace('chunkSize: 500', 'chunkSize: 250'));
    writeFileSync(join(repo, 'plans', 'orders-tax-recompute.handler.ts'), `${handler}\n// r2\n`);
  });

  it('compares the plan at a revision with the working tree, pinned files included', () => {
    const r = reprise(['diff', 'main:plans/orders-tax-recompute.yaml', 'plans/orders-tax-recompute.yaml'], { cwd: repo });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith('main:plans/orders-tax-recompute.yaml -> plans/orders-tax-recompute.yaml\n')).toBe(true);
    expect(r.stdout).toContain('~ revision: 1 -> 2\n~ rate.chunkSize: 500 -> 250\n');
    expect(r.stdout).toMatch(/\n {2}~ handler \.\/orders-tax-recompute\.handler\.ts: [0-9a-f]{12}… -> [0-9a-f]{12}…\n/);
    expect(r.stdout).toContain('--- a/orders-tax-recompute.r1.manifest.json\tmain:plans/orders-tax-recompute.yaml');
  });

  it('resolves REF:PATH relative to the current directory, and compares two revisions', () => {
    git('add', '.');
    git('commit', '-q', '-m', 'r2');
    const r = reprise(['diff', 'HEAD~1:orders-tax-recompute.yaml', 'HEAD:orders-tax-recompute.yaml'], { cwd: join(repo, 'plans') });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('~ rate.chunkSize: 500 -> 250');
    const same = reprise(['diff', 'HEAD:plans/orders-tax-recompute.yaml', 'plans/orders-tax-recompute.yaml'], { cwd: repo });
    expect(same.stdout).toContain('manifest hash unchanged');
  });

  it('reports an unknown revision and a directory outside git as invalid input', () => {
    const bad = reprise(['diff', 'no-such-branch:plans/orders-tax-recompute.yaml', 'plans/orders-tax-recompute.yaml'], { cwd: repo });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error\[PLAN_NOT_FOUND\]: cannot read plans\/orders-tax-recompute\.yaml at git revision no-such-branch/);
    const outside = mkdtempSync(join(tmpdir(), 'reprise-nogit-'));
    try {
      const r = reprise(['diff', 'main:x.yaml', join(examples, 'orders-tax-recompute.yaml')], { cwd: outside, env: { GIT_CEILING_DIRECTORIES: tmpdir() } });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^error\[GIT_UNAVAILABLE\]/);
      expect(noStackTrace(r.stderr)).toBe(true);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
