/** `reprise compile` as a subprocess: files written, the hash on the last line, --out, --json. */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jsonLines, noStackTrace, reprise, root } from './run.js';

const tmp = mkdtempSync(join(tmpdir(), 'reprise-compile-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('reprise compile', () => {
  it('writes the manifest and the runbook and prints the hash as its last line', () => {
    const out = join(tmp, 'a');
    const r = reprise(['compile', 'plans/examples/orders-tax-recompute.yaml', '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['orders-tax-recompute.r1.manifest.json', 'orders-tax-recompute.r1.runbook.md']);
    const lines = r.stdout.trimEnd().split('\n');
    const hash = lines.at(-1)!;
    expect(hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.stdout).toContain(`manifest  ${join(out, 'orders-tax-recompute.r1.manifest.json')}`);
    expect(r.stdout).toContain(`run id    orders-tax-recompute.r1.${hash.slice(7, 15)}`);
    const manifest = JSON.parse(readFileSync(join(out, 'orders-tax-recompute.r1.manifest.json'), 'utf8'));
    expect(manifest.hash).toBe(hash);
    const runbook = readFileSync(join(out, 'orders-tax-recompute.r1.runbook.md'), 'utf8');
    expect(runbook).toContain(hash);
    expect(runbook).toContain('## 4. Go / no-go checklist');
  });

  it('is byte-identical when run twice', () => {
    const [a, b] = [join(tmp, 'twice-1'), join(tmp, 'twice-2')];
    expect(reprise(['compile', 'plans/examples/webhook-redelivery.yaml', '--out', a]).code).toBe(0);
    expect(reprise(['compile', join(root, 'plans/examples/webhook-redelivery.yaml'), '--out', b], { cwd: tmp }).code).toBe(0);
    for (const f of ['webhook-redelivery.r1.manifest.json', 'webhook-redelivery.r1.runbook.md']) {
      expect(readFileSync(join(b, f)).equals(readFileSync(join(a, f))), f).toBe(true);
    }
  });

  it('writes to build/ by default', () => {
    const cwd = mkdtempSync(join(tmp, 'default-'));
    const r = reprise(['compile', join(root, 'plans/examples/notifications-redrive.yaml')], { cwd });
    expect(r.code).toBe(0);
    expect(readdirSync(join(cwd, 'build')).sort()).toEqual(['notifications-redrive.r1.manifest.json', 'notifications-redrive.r1.runbook.md']);
  });

  it('with --json prints one result object', () => {
    const r = reprise(['compile', '--json', 'plans/examples/orders-tax-recompute.yaml', '--out', join(tmp, 'json')]);
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'result', runId: expect.stringMatching(/^orders-tax-recompute\.r1\.[0-9a-f]{8}$/), hash: expect.stringMatching(/^sha256:/) });
  });

  it('refuses an invalid plan with exit 2, writing nothing', () => {
    const out = join(tmp, 'invalid');
    const r = reprise(['compile', 'test/compiler/fixtures/three-mistakes.yaml', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('error['))).toHaveLength(3);
    expect(r.stdout).toBe('');
    expect(() => readdirSync(out)).toThrow();
  });

  it('reports a missing plan file as invalid input, without a stack trace', () => {
    const r = reprise(['compile', 'nope.yaml', '--out', join(tmp, 'nope')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error\[PLAN_NOT_FOUND\]/);
    expect(noStackTrace(r.stderr)).toBe(true);
  });
});
