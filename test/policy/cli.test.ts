/**
 * The policy as a user's pipeline meets it: `reprise validate|compile|run --policy FILE` (or
 * REPRISE_POLICY) as a subprocess of the build, asserting stderr lines, stdout and exit codes.
 */
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jsonLines, noStackTrace, reprise, root } from '../cli/run.js';

const rel = (f: string): string => `test/policy/fixtures/${f}`;
const POLICY = rel('policy.yaml');
const noEnvPolicy = { REPRISE_POLICY: '' };
const errors = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('error['));
const ats = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('  at '));

const tmp = mkdtempSync(join(tmpdir(), 'reprise-policy-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const lenient = join(tmp, 'lenient.policy.yaml');
writeFileSync(lenient, '{}\n');

describe('reprise validate --policy', () => {
  it('prints every violation as error[CODE]: … — hint plus at plan:line:col, and exits 2', () => {
    const r = reprise(['validate', '--policy', POLICY, rel('compliant.yaml'), rel('violations.yaml')], { env: noEnvPolicy });
    expect(r.code).toBe(2);
    expect(errors(r.stderr).map((l) => /^error\[([A-Z_]+)\]/.exec(l)![1])).toEqual([
      'POLICY_FORBIDDEN_STATEMENT',
      'POLICY_FORBIDDEN_STATEMENT',
      'POLICY_RATE',
      'POLICY_CONCURRENCY',
      'POLICY_PROTECT_REQUIRED',
      'POLICY_APPROVALS',
    ]);
    expect(errors(r.stderr)[2]).toBe(
      `error[POLICY_RATE]: \`rate.itemsPerSecond\` is 1500, above the 1000 allowed for BILLING_DATABASE_URL by policy rule \`targets.BILLING_DATABASE_URL.maxItemsPerSecond\` (${POLICY}:4:24); connections \`billing\`, \`replica\` read BILLING_DATABASE_URL — set \`rate.itemsPerSecond\` to 1000 or less, or ask the owners of ${POLICY} to change the limit`,
    );
    expect(ats(r.stderr)).toEqual(['23:16', '29:18', '37:19', '38:16', '41:5', '46:16'].map((p) => `  at ${rel('violations.yaml')}:${p}`));
    expect(r.stdout).toBe(`policy    ${POLICY}\n${rel('compliant.yaml')}: ok\n${rel('violations.yaml')}: 6 problems\n`);
    expect(noStackTrace(r.stderr)).toBe(true);
  });

  it('without a policy the same plans are valid: none is read by default, not even a reprise.policy.yaml beside the plan', () => {
    const beside = mkdtempSync(join(tmp, 'beside-'));
    for (const f of ['violations.yaml', 'handler.ts']) copyFileSync(join(root, rel(f)), join(beside, f));
    copyFileSync(join(root, POLICY), join(beside, 'reprise.policy.yaml'));
    const r = reprise(['validate', 'violations.yaml'], { env: noEnvPolicy, cwd: beside });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('violations.yaml: ok\n');
    expect(r.code).toBe(0);
  });

  it('with --json: one object per violation (file, line, col, path, the rule) and a summary naming the policy', () => {
    const r = reprise(['validate', '--json', '--policy', POLICY, rel('violations.yaml')], { env: noEnvPolicy });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('');
    const lines = jsonLines(r.stdout);
    expect(lines).toHaveLength(7);
    expect(lines[5]).toMatchObject({ level: 'error', code: 'POLICY_APPROVALS', file: rel('violations.yaml'), line: 46, col: 16, path: 'approvals.full.min', details: { policy: POLICY, rule: 'approvals.whenPolicies.suppress.full' } });
    expect(lines[6]).toEqual({ level: 'summary', plan: rel('violations.yaml'), ok: false, problems: 6, policy: POLICY });
  });

  it('REPRISE_POLICY applies when there is no flag; the flag wins over it; an empty variable is no policy', () => {
    const viaEnv = reprise(['validate', rel('violations.yaml')], { env: { REPRISE_POLICY: POLICY } });
    expect(viaEnv.code).toBe(2);
    expect(errors(viaEnv.stderr)).toHaveLength(6);

    const flagWins = reprise(['validate', '--policy', lenient, rel('violations.yaml')], { env: { REPRISE_POLICY: POLICY } });
    expect(flagWins.stderr).toBe('');
    expect(flagWins.stdout).toBe(`policy    ${lenient}\n${rel('violations.yaml')}: ok\n`);
    expect(flagWins.code).toBe(0);

    const strictFlag = reprise(['validate', '--policy', POLICY, rel('violations.yaml')], { env: { REPRISE_POLICY: lenient } });
    expect(strictFlag.code).toBe(2);
    expect(errors(strictFlag.stderr)).toHaveLength(6);

    const empty = reprise(['validate', rel('violations.yaml')], { env: { REPRISE_POLICY: '' } });
    expect(empty.stdout).toBe(`${rel('violations.yaml')}: ok\n`);
    expect(empty.code).toBe(0);
  });

  it("a policy file's own mistakes: error lines at the policy file's line:col, exit 2, before any plan", () => {
    const r = reprise(['validate', '--policy', rel('policy-mistakes.yaml'), rel('compliant.yaml')], { env: noEnvPolicy });
    expect(r.code).toBe(2);
    expect(errors(r.stderr)).toHaveLength(8);
    expect(errors(r.stderr)[0]).toBe('error[UNKNOWN_KEY]: unknown key `maxItemPerSecond` in `targets.BILLING_DATABASE_URL` — did you mean `maxItemsPerSecond`?');
    expect(ats(r.stderr)).toEqual(['4:5', '5:21', '6:3', '7:21', '9:9', '10:19', '12:14', '14:5'].map((p) => `  at ${rel('policy-mistakes.yaml')}:${p}`));
    expect(r.stdout).toBe('');

    const viaEnv = reprise(['validate', '--json', rel('compliant.yaml')], { env: { REPRISE_POLICY: rel('policy-list.yaml') } });
    expect(viaEnv.code).toBe(2);
    expect(jsonLines(viaEnv.stdout)).toEqual([
      expect.objectContaining({ level: 'error', code: 'POLICY_NOT_A_MAPPING', file: rel('policy-list.yaml'), line: 1, col: 1 }),
    ]);
  });

  it('a policy file that cannot be read is POLICY_NOT_FOUND, exit 2', () => {
    const r = reprise(['validate', '--policy', rel('nope.yaml'), rel('compliant.yaml')], { env: noEnvPolicy });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error\[POLICY_NOT_FOUND\]: cannot read policy test\/policy\/fixtures\/nope\.yaml \(ENOENT\) — check --policy \/ REPRISE_POLICY/);
  });
});

describe('reprise compile --policy', () => {
  it('refuses a plan breaking the policy (exit 2, every problem) and writes no manifest', () => {
    const out = join(tmp, 'refused');
    const r = reprise(['compile', '--out', out, '--policy', POLICY, rel('violations.yaml')], { env: noEnvPolicy });
    expect(r.code).toBe(2);
    expect(errors(r.stderr)).toHaveLength(6);
    expect(ats(r.stderr)[0]).toBe(`  at ${rel('violations.yaml')}:23:16`);
    expect(r.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
  });

  it('the manifest is byte-identical and the hash the same with or without the policy', () => {
    const a = reprise(['compile', '--out', join(tmp, 'with'), '--policy', POLICY, rel('compliant.yaml')], { env: noEnvPolicy });
    const b = reprise(['compile', '--out', join(tmp, 'without'), rel('compliant.yaml')], { env: noEnvPolicy });
    expect([a.code, b.code, a.stderr, b.stderr]).toEqual([0, 0, '', '']);
    const hashOf = (stdout: string): string => stdout.trimEnd().split('\n').pop()!;
    expect(hashOf(a.stdout)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(hashOf(a.stdout)).toBe(hashOf(b.stdout));
    expect(a.stdout).toContain(`policy    ${POLICY} (met)\n`);
    expect(b.stdout).not.toMatch(/^policy/m);
    const manifest = (dir: string): string => readFileSync(join(tmp, dir, 'billing-fix.r1.manifest.json'), 'utf8');
    expect(manifest('with')).toBe(manifest('without'));
    expect(readFileSync(join(tmp, 'with', 'billing-fix.r1.runbook.md'), 'utf8')).toBe(readFileSync(join(tmp, 'without', 'billing-fix.r1.runbook.md'), 'utf8'));
  });

  it('REPRISE_POLICY applies to compile too, and --policy wins over it', () => {
    const viaEnv = reprise(['compile', '--out', join(tmp, 'env'), rel('violations.yaml')], { env: { REPRISE_POLICY: POLICY } });
    expect(viaEnv.code).toBe(2);
    expect(errors(viaEnv.stderr)).toHaveLength(6);
    const flagWins = reprise(['compile', '--out', join(tmp, 'flag'), '--policy', lenient, rel('violations.yaml')], { env: { REPRISE_POLICY: POLICY } });
    expect(flagWins.stderr).toBe('');
    expect(flagWins.code).toBe(0);
  });
});

describe('reprise run --policy', () => {
  // No database or Redis behind these URLs: a run that got past the policy would fail to reach them (exit 3).
  const unreachable = {
    ORDERS_DATABASE_URL: 'postgres://reprise@127.0.0.1:9/nowhere',
    EVENTS_REDIS_URL: 'redis://127.0.0.1:9',
    REPRISE_STATE: '',
    REPRISE_TRUST: '',
  };
  const plan = join(root, 'plans', 'examples', 'orders-tax-recompute.yaml');
  const noUpserts = join(tmp, 'no-upserts.policy.yaml');
  writeFileSync(noUpserts, "forbid:\n  - pattern: '\\bon\\s+conflict\\b'\n    message: no upserts on the orders database\n");

  it('refuses a plan breaking the policy with exit 2 before anything is opened or processed', () => {
    const cwd = mkdtempSync(join(tmp, 'run-'));
    writeFileSync(join(cwd, 'allowed_signers'), '');
    const r = reprise(['run', plan, '--stage', 'canary', '--policy', noUpserts, '--trust', 'allowed_signers'], { cwd, env: unreachable });
    expect(r.stderr.split('\n').filter(Boolean)).toEqual([
      `error[POLICY_FORBIDDEN_STATEMENT]: the statement of sql effect \`write_invoice\` is forbidden by policy rule \`forbid[0]\` (${noUpserts}:2:5): no upserts on the orders database — rewrite it so it no longer matches /\\bon\\s+conflict\\b/i, or ask the owners of ${noUpserts}`,
      `  at ${plan}:39:16`,
    ]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    // No state store (./.reprise/state), no reports, no approvals folder: nothing was opened.
    expect(readdirSync(cwd)).toEqual(['allowed_signers']);

    // The control: without the policy the same command goes on and tries the state store (exit 3).
    const control = reprise(['run', plan, '--stage', 'canary', '--trust', 'allowed_signers'], { cwd, env: unreachable });
    expect(control.stderr).toMatch(/^error\[STATE_UNAVAILABLE\]/);
    expect(control.code).toBe(3);
  });

  it('REPRISE_POLICY refuses the run as well; the policy file is read before anything else', () => {
    const cwd = mkdtempSync(join(tmp, 'run-'));
    writeFileSync(join(cwd, 'allowed_signers'), '');
    const viaEnv = reprise(['run', plan, '--stage', 'full', '--trust', 'allowed_signers'], { cwd, env: { ...unreachable, REPRISE_POLICY: noUpserts } });
    expect(errors(viaEnv.stderr)).toEqual([expect.stringMatching(/^error\[POLICY_FORBIDDEN_STATEMENT\]/)]);
    expect(viaEnv.code).toBe(2);

    const badPolicy = reprise(['run', plan, '--stage', 'canary', '--policy', join(root, rel('policy-duplicate.yaml'))], { cwd, env: unreachable });
    expect(errors(badPolicy.stderr)).toEqual([expect.stringMatching(/^error\[DUPLICATE_KEY\]/)]);
    expect(ats(badPolicy.stderr)).toEqual([`  at ${join(root, rel('policy-duplicate.yaml'))}:3:3`]);
    expect(badPolicy.code).toBe(2);
    expect(readdirSync(cwd)).toEqual(['allowed_signers']);
  });
});

describe('reprise ci-comment --policy', () => {
  const reports = (): string => mkdtempSync(join(tmp, 'reports-'));
  it('refuses a plan breaking the policy (exit 2, every problem) and prints no comment', () => {
    const r = reprise(['ci-comment', '--policy', POLICY, '--base', 'no-such-ref', '--reports', reports(), '--approvals', reports(), rel('violations.yaml')], { env: noEnvPolicy });
    expect(r.code).toBe(2);
    expect(errors(r.stderr)).toHaveLength(6);
    expect(r.stdout).toBe('');
    expect(noStackTrace(r.stderr)).toBe(true);
  });

  it('REPRISE_POLICY applies to the comment as the pipeline sets it; a plan that meets it says so in the header', () => {
    const viaEnv = reprise(['ci-comment', '--base', 'no-such-ref', '--reports', reports(), '--approvals', reports(), rel('violations.yaml')], { env: { REPRISE_POLICY: POLICY } });
    expect(viaEnv.code).toBe(2);
    expect(errors(viaEnv.stderr)).toHaveLength(6);

    const met = reprise(['ci-comment', '--base', 'no-such-ref', '--reports', reports(), '--approvals', reports(), rel('compliant.yaml')], { env: { REPRISE_POLICY: POLICY } });
    expect(met.code).toBe(0);
    expect(met.stdout).toContain(`| Organisation policy | \`${POLICY}\`: met |`);
    const without = reprise(['ci-comment', '--base', 'no-such-ref', '--reports', reports(), '--approvals', reports(), rel('compliant.yaml')], { env: noEnvPolicy });
    expect(without.code).toBe(0);
    expect(without.stdout).not.toContain('Organisation policy');
  });
});
