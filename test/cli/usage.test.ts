/** Usage errors: a one-line error, exit 2, never a stack trace. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN } from '../support/cli.js';
import { noStackTrace, reprise } from './run.js';

describe('usage errors', () => {
  it.each([
    [['validate'], /missing required argument 'plan'/],
    [['compile'], /missing required argument 'plan'/],
    [['diff', 'plans/examples/orders-tax-recompute.yaml'], /missing required argument 'b'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['compile', 'plans/examples/orders-tax-recompute.yaml', '--nope'], /unknown option '--nope'/],
  ])('reprise %j exits 2', (args, message) => {
    const r = reprise(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error\[USAGE\]: /);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(noStackTrace(r.stderr)).toBe(true);
  });

  it('--help and --version exit 0', () => {
    const help = reprise(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('validate');
    expect(help.stdout).toContain('diff');
    const v = reprise(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('a reader that closes the pipe early (| head -1) is not a crash', () => {
    const plans = Array.from({ length: 40 }, () => 'plans/examples/orders-tax-recompute.yaml').join(' ');
    const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${BIN}" --json validate ${plans} | head -1`], { encoding: 'utf8', cwd: `${import.meta.dirname}/../..` });
    expect(r.stdout.trim()).toMatch(/^\{"level":"summary"/);
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(r.status).toBe(0);
  });
});
