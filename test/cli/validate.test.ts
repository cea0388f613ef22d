/** `reprise validate` as a subprocess: stdout, stderr and the exit code. */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { jsonLines, noStackTrace, reprise, root } from './run.js';

const fixture = (f: string) => `test/compiler/fixtures/${f}`;

describe('reprise validate', () => {
  it('accepts every example plan (exit 0)', () => {
    const r = reprise(['validate', 'plans/examples/notifications-redrive.yaml', 'plans/examples/orders-tax-recompute.yaml', 'plans/examples/webhook-redelivery.yaml']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      'plans/examples/notifications-redrive.yaml: ok\nplans/examples/orders-tax-recompute.yaml: ok\nplans/examples/webhook-redelivery.yaml: ok\n',
    );
    expect(r.code).toBe(0);
  });

  it('`npx reprise validate plans/examples/*.yaml` exits 0, as the README says', () => {
    const r = spawnSync('sh', ['-c', 'npx --offline reprise validate plans/examples/*.yaml'], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 });
    expect(r.stderr).not.toContain('error[');
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(3);
    expect(r.status).toBe(0);
  });

  it('prints the three independent mistakes of a plan, each with its line:col, and exits 2', () => {
    const r = reprise(['validate', fixture('three-mistakes.yaml')]);
    expect(r.code).toBe(2);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error['));
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatch(/^error\[WINDOW_ORDER\]: `selection\.window\.start` .* — /);
    expect(errors[1]).toMatch(/^error\[UNKNOWN_KEY\]: unknown key `timeout` in `processing` — did you mean `timeoutMs`\?$/);
    expect(errors[2]).toMatch(/^error\[UNDECLARED_CONNECTION\]: .*`billing`.* — /);
    const at = r.stderr.split('\n').filter((l) => l.startsWith('  at '));
    expect(at).toEqual([
      `  at ${fixture('three-mistakes.yaml')}:14:20`,
      `  at ${fixture('three-mistakes.yaml')}:18:3`,
      `  at ${fixture('three-mistakes.yaml')}:22:17`,
    ]);
    expect(r.stdout).toBe(`${fixture('three-mistakes.yaml')}: 3 problems\n`);
    expect(noStackTrace(r.stderr)).toBe(true);
  });

  it('with --json prints one object per problem and a summary, on stdout only', () => {
    const r = reprise(['validate', '--json', fixture('three-mistakes.yaml'), fixture('valid.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('');
    const lines = jsonLines(r.stdout);
    expect(lines.map((l) => [l.level, l.code ?? l.ok, l.line ?? l.problems])).toEqual([
      ['error', 'WINDOW_ORDER', 14],
      ['error', 'UNKNOWN_KEY', 18],
      ['error', 'UNDECLARED_CONNECTION', 22],
      ['summary', false, 3],
      ['summary', true, 0],
    ]);
    expect(lines[1]).toMatchObject({ code: 'UNKNOWN_KEY', col: 3, path: 'processing.timeout', file: fixture('three-mistakes.yaml'), hint: 'did you mean `timeoutMs`?' });
  });

  it('validates every plan given, and fails when one of them is bad', () => {
    const r = reprise(['validate', fixture('valid.yaml'), fixture('window-order.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`${fixture('valid.yaml')}: ok`);
    expect(r.stdout).toContain(`${fixture('window-order.yaml')}: 1 problem`);
  });

  it('reports a missing plan file as invalid input, without a stack trace', () => {
    const r = reprise(['validate', 'plans/does-not-exist.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error\[PLAN_NOT_FOUND\]: cannot read plan plans\/does-not-exist\.yaml \(ENOENT\) — /);
    expect(noStackTrace(r.stderr)).toBe(true);
  });

  it('reports YAML syntax errors with their position', () => {
    const r = reprise(['validate', fixture('yaml-syntax.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error[YAML_SYNTAX]');
    expect(r.stderr).toContain(`at ${fixture('yaml-syntax.yaml')}:16:1`);
  });
});
