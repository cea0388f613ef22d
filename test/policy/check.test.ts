/**
 * checkPolicy through checkPlan: every rule kind broken, with its code and the plan position it
 * points at; defaults judged as the compiler applies them; what `forbid` matches and what it does
 * not; the plan's own problems beside the policy's; the manifest the same with or without a policy.
 */
import { describe, expect, it } from 'vitest';
import { compileSource } from '../../compiler/compile.js';
import { PlanInvalidError } from '../../compiler/errors.js';
import { loadPolicyFile } from '../../compiler/policy.js';
import { fsPlanSource } from '../../compiler/source.js';
import { fixture, policyFrom, positions, problemsOf, problemsOfText, read } from './helpers.js';

const policy = loadPolicyFile(fixture('policy.yaml'));
const policyFile = fixture('policy.yaml');
const compliant = read(fixture('compliant.yaml'));

describe('a plan held to the policy', () => {
  it('a plan at every limit meets it (an untouched target does not apply)', () => {
    expect(problemsOf('compliant.yaml', policy)).toEqual([]);
  });

  it('the plan breaking every rule is valid without a policy', () => {
    expect(problemsOf('violations.yaml', undefined)).toEqual([]);
  });

  it('reports every rule kind with its code, at the offending field of the plan, in file order', () => {
    const problems = problemsOf('violations.yaml', policy);
    expect(positions(problems)).toEqual([
      'POLICY_FORBIDDEN_STATEMENT 23:16', // sideEffects[0].statement (a comment, then DELETE)
      'POLICY_FORBIDDEN_STATEMENT 29:18', // sideEffects[0].reverse.statement
      'POLICY_RATE 37:19', // rate.itemsPerSecond
      'POLICY_CONCURRENCY 38:16', // rate.concurrency
      'POLICY_PROTECT_REQUIRED 41:5', // rate.protect (an HTTP probe only)
      'POLICY_APPROVALS 46:16', // approvals.full.min
    ]);
    for (const p of problems) {
      expect(p.at!.file).toBe(fixture('violations.yaml'));
      expect(p.hint, `${p.code} has a hint`).toBeTruthy();
      expect(p.message, `${p.code} names the policy file`).toContain(policyFile);
      expect(p.details).toMatchObject({ policy: policyFile });
    }
    expect(problems.map((p) => p.path?.join('.'))).toEqual([
      'sideEffects.0.statement',
      'sideEffects.0.reverse.statement',
      'rate.itemsPerSecond',
      'rate.concurrency',
      'rate.protect',
      'approvals.full.min',
    ]);
  });

  it('each message names the rule and where the policy writes it', () => {
    const byCode = new Map(problemsOf('violations.yaml', policy).map((p) => [`${p.code}:${p.path?.join('.')}`, p]));
    const rate = byCode.get('POLICY_RATE:rate.itemsPerSecond')!;
    expect(rate.message).toBe(
      `\`rate.itemsPerSecond\` is 1500, above the 1000 allowed for BILLING_DATABASE_URL by policy rule \`targets.BILLING_DATABASE_URL.maxItemsPerSecond\` (${policyFile}:4:24); connections \`billing\`, \`replica\` read BILLING_DATABASE_URL`,
    );
    expect(rate.hint).toContain('set `rate.itemsPerSecond` to 1000 or less');
    expect(rate.details).toEqual({ policy: policyFile, rule: 'targets.BILLING_DATABASE_URL.maxItemsPerSecond' });
    expect(byCode.get('POLICY_CONCURRENCY:rate.concurrency')!.message).toContain(`\`rate.concurrency\` is 16, above the 8 allowed for BILLING_DATABASE_URL by policy rule \`targets.BILLING_DATABASE_URL.maxConcurrency\` (${policyFile}:5:21)`);
    const protect = byCode.get('POLICY_PROTECT_REQUIRED:rate.protect')!;
    expect(protect.message).toContain(`policy rule \`targets.BILLING_DATABASE_URL.requireProtect\` (${policyFile}:6:21)`);
    expect(protect.hint).toContain('`connection: billing`');
    const approvals = byCode.get('POLICY_APPROVALS:approvals.full.min')!;
    expect(approvals.message).toBe(
      `\`approvals.full.min\` is 2, below the 3 approvers required by policy rule \`approvals.whenPolicies.suppress.full\` (${policyFile}:12:37) (the plan has \`backfill: suppress\` effect \`notify\`)`,
    );
    const forbidden = byCode.get('POLICY_FORBIDDEN_STATEMENT:sideEffects.0.statement')!;
    expect(forbidden.message).toBe(`the statement of sql effect \`purge\` is forbidden by policy rule \`forbid[0]\` (${policyFile}:14:5): unbounded delete or truncate`);
    expect(byCode.get('POLICY_FORBIDDEN_STATEMENT:sideEffects.0.reverse.statement')!.message).toMatch(/^the reverse statement of sql effect `purge` is forbidden by policy rule `forbid\[0\]`/);
  });

  it("reports the plan's own problems beside the policy's, sorted by position", () => {
    const text = read(fixture('violations.yaml')).replace('  concurrency: 16\n', '  concurrency: 16\n  burst: 3\n');
    expect(positions(problemsOfText(text, policy))).toEqual([
      'POLICY_FORBIDDEN_STATEMENT 23:16',
      'POLICY_FORBIDDEN_STATEMENT 29:18',
      'POLICY_RATE 37:19',
      'POLICY_CONCURRENCY 38:16',
      'UNKNOWN_KEY 39:3',
      'POLICY_PROTECT_REQUIRED 42:5',
      'POLICY_APPROVALS 47:16',
    ]);
  });

  it('skips a value the schema already rejects instead of guessing (no internal error)', () => {
    const text = compliant.replace('itemsPerSecond: 1000', 'itemsPerSecond: fast').replace('full: { min: 2 }', 'full: { min: two }');
    expect(positions(problemsOfText(text, policy))).toEqual(['INVALID_VALUE 29:19', 'INVALID_VALUE 38:16']);
  });
});

describe('targets', () => {
  const strict = policyFrom('targets:\n  BILLING_DATABASE_URL: { maxItemsPerSecond: 50, maxConcurrency: 1, requireProtect: true }\n');
  const withoutRateOrApprovals = compliant.slice(0, compliant.indexOf('rate:\n'));

  it('judges the defaults the compiler applies; with no `rate`, points at the connection', () => {
    const problems = problemsOfText(withoutRateOrApprovals, strict);
    expect(positions(problems)).toEqual(['POLICY_RATE 9:3', 'POLICY_PROTECT_REQUIRED 9:3']);
    expect(problems[0]!.message).toMatch(/^`rate.itemsPerSecond` is 100 \(the default\), above the 50 allowed for BILLING_DATABASE_URL/);
    expect(problems[0]!.at!.file).toBe('plan.yaml');
  });

  it('with `rate` written but not the field, points at `rate`', () => {
    const text = compliant.replace('  itemsPerSecond: 1000\n', '');
    expect(positions(problemsOfText(text, strict))).toEqual(['POLICY_RATE 29:3', 'POLICY_CONCURRENCY 29:16']);
  });

  it('a connection declared but unused still touches its target (reprise fingerprints it)', () => {
    const text = compliant.replace('  billing: { env: BILLING_DATABASE_URL }\n', '  billing: { env: BILLING_DATABASE_URL }\n  archive: { env: UNUSED_DATABASE_URL }\n');
    const problems = problemsOfText(text, policy);
    expect(positions(problems)).toEqual(['POLICY_RATE 30:19']);
    expect(problems[0]!.message).toContain('connection `archive` reads UNUSED_DATABASE_URL');
  });

  it('a SQL probe on any connection reading the variable meets requireProtect; a probe elsewhere does not', () => {
    const two = compliant.replace('  billing: { env: BILLING_DATABASE_URL }\n', '  billing: { env: BILLING_DATABASE_URL }\n  billing_ro: { env: BILLING_DATABASE_URL }\n  other: { env: OTHER_DATABASE_URL }\n');
    expect(problemsOfText(two.replace('      connection: billing\n      query: select 0', '      connection: billing_ro\n      query: select 0'), policy)).toEqual([]);
    expect(positions(problemsOfText(two.replace('      connection: billing\n      query: select 0', '      connection: other\n      query: select 0'), policy))).toEqual(['POLICY_PROTECT_REQUIRED 34:5']);
  });
});

describe('approvals', () => {
  it('the policy minimum of each stage, defaults included, at the plan field or its nearest ancestor', () => {
    const p = policyFrom('approvals: { canary: 2, full: 2, reverse: 3 }\n');
    const problems = problemsOfText(compliant, p);
    // reverse is not written: its nearest ancestor, `approvals`, comes first in the file.
    expect(positions(problems)).toEqual(['POLICY_APPROVALS 37:3', 'POLICY_APPROVALS 37:18']);
    expect(problems[0]!.message).toMatch(/^`approvals.reverse.min` is 1 \(the default\), below the 3 approvers required by policy rule `approvals.reverse`/);
    expect(problems[0]!.path).toEqual(['approvals', 'reverse', 'min']);
    expect(problems[1]!.message).toMatch(/^`approvals.canary.min` is 1, below the 2 approvers required by policy rule `approvals.canary` \(inline.policy.yaml:1:22\)$/);
  });

  it('the strictest applicable minimum wins; a whenPolicies entry applies only to a plan with that backfill policy', () => {
    const p = policyFrom('approvals:\n  full: 2\n  whenPolicies: { replay: { full: 4 }, suppress: { full: 9 }, dedupe: { canary: 9 } }\n');
    const problems = problemsOfText(compliant, p);
    expect(positions(problems)).toEqual(['POLICY_APPROVALS 38:16']);
    expect(problems[0]!.message).toContain('below the 4 approvers required by policy rule `approvals.whenPolicies.replay.full` (inline.policy.yaml:3:35) (the plan has `backfill: replay` effect `fix_invoice`)');
    expect(problems[0]!.details).toEqual({ policy: 'inline.policy.yaml', rule: 'approvals.whenPolicies.replay.full' });
  });

  it('a plan that raises a minimum meets it; a plan with no approvals section is judged on the defaults', () => {
    expect(problemsOfText(compliant.replace('full: { min: 2 }', 'full: { min: 5 }'), policyFrom('approvals: { full: 5 }\n'))).toEqual([]);
    const bare = compliant.slice(0, compliant.indexOf('approvals:\n'));
    expect(positions(problemsOfText(bare, policyFrom('approvals: { full: 2 }\n')))).toEqual(['POLICY_APPROVALS 2:1']);
  });
});

describe('forbid', () => {
  // The effect alone (no preview or reverse, whose parameters must be the statement's).
  const bare = compliant.replace('    preview: select id, total from invoices where id = :id\n', '').replace(/    reverse:\n      statement: .*\n/, '');
  const withStatement = (statement: string): string => bare.replace('statement: update invoices set total = :total where id = :id', `statement: ${statement}`);

  it('matches case-insensitively, after removing comments, against statement and reverse.statement', () => {
    expect(positions(problemsOfText(withStatement('"TRUNCATE invoices"'), policy))).toEqual(['POLICY_FORBIDDEN_STATEMENT 22:16']);
    expect(problemsOfText(withStatement('update invoices set total = :total where id = :id -- never drop table here'), policy)).toEqual([]);
    expect(positions(problemsOfText(withStatement('"/* cleanup */ delete from invoices"'), policy))).toEqual(['POLICY_FORBIDDEN_STATEMENT 22:16']);
    expect(problemsOfText(withStatement('delete from invoices where id = :id'), policy)).toEqual([]);
  });

  it('reports every rule a statement matches', () => {
    const problems = problemsOfText(withStatement('"truncate t; drop table t"'), policy);
    expect(problems.map((p) => p.details?.rule)).toEqual(['forbid[0]', 'forbid[1]']);
    expect(problems[1]!.message).toContain(': no DDL in a backfill');
  });

  it('never looks at the selection query, a preview, probes or validations', () => {
    const text = compliant
      .replace("where at >= :window_start", "where note <> 'drop table' and at >= :window_start")
      .replace('preview: select id, total from invoices where id = :id', "preview: select id, total, 'drop table' as x from invoices where id = :id")
      .replace('query: select 0 as value', "query: select length('drop table') as value");
    expect(problemsOfText(text, policy)).toEqual([]);
  });
});

describe('the manifest does not depend on the policy', () => {
  it('same bytes and hash with a policy, without one and with an empty one', async () => {
    const source = () => fsPlanSource(fixture('compliant.yaml'));
    const without = await compileSource(source());
    const withPolicy = await compileSource(source(), { policy });
    const withEmpty = await compileSource(source(), { policy: policyFrom('{}\n') });
    expect(withPolicy.hash).toBe(without.hash);
    expect(withPolicy.bytes).toBe(without.bytes);
    expect(withEmpty.bytes).toBe(without.bytes);
    expect(without.bytes).not.toContain('policy.yaml');
  });

  it('compileSource refuses a plan breaking the policy with every problem', async () => {
    const err = await compileSource(fsPlanSource(fixture('violations.yaml')), { policy }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlanInvalidError);
    expect((err as PlanInvalidError).exit).toBe(2);
    expect((err as PlanInvalidError).diagnostics.map((d) => d.code)).toEqual([
      'POLICY_FORBIDDEN_STATEMENT',
      'POLICY_FORBIDDEN_STATEMENT',
      'POLICY_RATE',
      'POLICY_CONCURRENCY',
      'POLICY_PROTECT_REQUIRED',
      'POLICY_APPROVALS',
    ]);
  });
});
