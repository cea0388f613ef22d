/**
 * docs/policy.md and docs/reprise.policy.example.yaml against the code: the example policy
 * loads, the example output in the doc is what validate prints, and the codes the doc names are
 * exactly the policy's (plus the YAML and schema codes a policy file shares with plans).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkPlan } from '../../compiler/compile.js';
import { DIAGNOSTIC_CODES, POLICY_CODES } from '../../compiler/codes.js';
import { formatProblem } from '../../compiler/errors.js';
import { loadPolicyFile, parsePolicy } from '../../compiler/policy.js';
import { fsPlanSource } from '../../compiler/source.js';
import { reprise } from '../cli/run.js';
import { root } from './helpers.js';

const read = (p: string): string => readFileSync(join(root, p), 'utf8');
const doc = read('docs/policy.md');
const EXAMPLE = 'docs/reprise.policy.example.yaml';

describe('docs/reprise.policy.example.yaml', () => {
  it('loads without a problem and uses every section', () => {
    const policy = loadPolicyFile(join(root, EXAMPLE));
    expect(Object.keys(policy.rules).sort()).toEqual(['approvals', 'forbid', 'targets']);
    expect(policy.rules.approvals?.whenPolicies).toBeDefined();
    expect(policy.forbid.length).toBeGreaterThan(0);
  });

  it('holds the example plans to it as docs/policy.md shows (two meet it, one is refused)', () => {
    const { policy } = parsePolicy(EXAMPLE, read(EXAMPLE));
    const problems = (plan: string) => checkPlan(fsPlanSource(join(root, plan), plan), { policy }).diagnostics;
    expect(problems('plans/examples/orders-tax-recompute.yaml')).toEqual([]);
    expect(problems('plans/examples/notifications-redrive.yaml')).toEqual([]);
    const refused = problems('plans/examples/webhook-redelivery.yaml');
    expect(refused.map((d) => d.code)).toEqual(['POLICY_APPROVALS']);
    expect(doc).toContain(formatProblem(refused[0]!));
  });

  it('the transcript in docs/policy.md is what `reprise validate` prints', () => {
    const section = doc.slice(doc.indexOf('## Example: the example plans under the example policy'));
    const transcript = /```\n\$ (reprise validate [^\n]+)\n([\s\S]*?)\$ echo \$\?\n(\d+)\n```/.exec(section);
    expect(transcript).not.toBeNull();
    const [, command, output, code] = transcript!;
    const args = command!.replace(/^reprise /, '').replace('plans/examples/*.yaml', 'plans/examples/notifications-redrive.yaml plans/examples/orders-tax-recompute.yaml plans/examples/webhook-redelivery.yaml').split(' ');
    const r = reprise(args, { env: { REPRISE_POLICY: '' } });
    // The shell interleaves stdout and stderr in the transcript; compare the lines, and each stream's order.
    const lines = output!.trimEnd().split('\n');
    expect([...r.stdout.trimEnd().split('\n'), ...r.stderr.trimEnd().split('\n')].sort()).toEqual([...lines].sort());
    expect(lines.filter((l) => r.stdout.includes(l))).toEqual(r.stdout.trimEnd().split('\n'));
    expect(r.code).toBe(Number(code));
  });
});

describe('docs/policy.md and the code catalog', () => {
  const documented = new Set([...doc.matchAll(/`([A-Z][A-Z0-9_]{3,})`/g)].map((m) => m[1]!).filter((c) => c.includes('_') && !/_URL$/.test(c) && c !== 'REPRISE_POLICY'));
  const catalog = new Set([...POLICY_CODES, ...DIAGNOSTIC_CODES].map((c) => c.code));

  it('every code the doc names exists', () => {
    expect(documented.size).toBeGreaterThan(10);
    expect([...documented].filter((c) => !catalog.has(c))).toEqual([]);
  });

  it('every policy code is in the doc, and every code compiler/policy.ts reports is in the catalog', () => {
    expect(POLICY_CODES.map((c) => c.code).filter((c) => !documented.has(c))).toEqual([]);
    const src = read('compiler/policy.ts');
    const emitted = new Set([...src.matchAll(/'(POLICY_[A-Z_]+)'/g)].map((m) => m[1]!));
    expect(emitted.size).toBeGreaterThanOrEqual(8);
    const policyCodes = new Set(POLICY_CODES.map((c) => c.code));
    expect([...emitted].filter((c) => !policyCodes.has(c))).toEqual([]);
    expect([...policyCodes].filter((c) => !emitted.has(c))).toEqual([]);
    expect(new Set(POLICY_CODES.map((c) => c.code)).size).toBe(POLICY_CODES.length);
    expect(POLICY_CODES.filter((c) => DIAGNOSTIC_CODES.some((d) => d.code === c.code))).toEqual([]);
  });

  it('every catalog entry says what it means and how to fix it', () => {
    for (const c of POLICY_CODES) {
      expect(c.means.length, c.code).toBeGreaterThan(20);
      expect(c.fix.length, c.code).toBeGreaterThan(10);
    }
  });
});
