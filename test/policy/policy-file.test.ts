/**
 * The policy file itself: its mistakes are reported at its own line:col (all at once), a file
 * that cannot be read is POLICY_NOT_FOUND, and schema/policy.schema.json documents every field.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PlanInvalidError, PolicyInvalidError, RepriseError } from '../../compiler/errors.js';
import { loadPolicyFile, parsePolicy } from '../../compiler/policy.js';
import { fixture, positions, root } from './helpers.js';

const mistakes = fixture('policy-mistakes.yaml');

describe('a policy file with mistakes of its own', () => {
  it('reports every mistake at the policy file line:col, in file order', () => {
    const { policy, diagnostics } = parsePolicy(mistakes, readFileSync(mistakes, 'utf8'));
    expect(policy).toBeUndefined();
    expect(positions(diagnostics)).toEqual([
      'UNKNOWN_KEY 4:5', // maxItemPerSecond
      'OUT_OF_RANGE 5:21', // maxConcurrency: 0
      'INVALID_FORMAT 6:3', // billing-db is not an environment variable name
      'INVALID_VALUE 7:21', // requireProtect: yes (YAML 1.2: a string)
      'INVALID_VALUE 9:9', // full: two
      'UNKNOWN_KEY 10:19', // supress
      'POLICY_INVALID_PATTERN 12:14', // '(delete'
      'MISSING_FIELD 14:5', // forbid[1] has no message
    ]);
    for (const d of diagnostics) {
      expect(d.at!.file).toBe(mistakes);
      expect(d.hint, `${d.code} has a hint`).toBeTruthy();
    }
    expect(diagnostics[0]!.hint).toBe('did you mean `maxItemsPerSecond`?');
    expect(diagnostics[5]!.message).toBe('unknown key `supress` in `approvals.whenPolicies`');
    expect(diagnostics[6]!.message).toMatch(/^`forbid\[0\]\.pattern` is not a valid regular expression: .*Unterminated group/);
  });

  it('loadPolicyFile throws them together as a PolicyInvalidError (a plan error: exit 2)', () => {
    let err: unknown;
    try {
      loadPolicyFile(mistakes);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PolicyInvalidError);
    expect(err).toBeInstanceOf(PlanInvalidError);
    const e = err as PolicyInvalidError;
    expect(e.code).toBe('POLICY_INVALID');
    expect(e.exit).toBe(2);
    expect(e.diagnostics).toHaveLength(8);
    expect(e.format().split('\n')[1]).toBe(`  at ${mistakes}:4:5`);
  });

  it.each([
    ['policy-duplicate.yaml', ['DUPLICATE_KEY 3:3']],
    ['policy-list.yaml', ['POLICY_NOT_A_MAPPING 1:1']],
  ])('%s: %j', (file, expected) => {
    const { diagnostics } = parsePolicy(fixture(file), readFileSync(fixture(file), 'utf8'));
    expect(positions(diagnostics)).toEqual(expected);
  });

  it('an empty file is not a policy; YAML syntax errors point into the file', () => {
    expect(positions(parsePolicy('p.yaml', '').diagnostics)).toEqual(['POLICY_NOT_A_MAPPING 1:1']);
    expect(parsePolicy('p.yaml', 'targets:\n  A_URL: { maxConcurrency: 1\n').diagnostics.map((d) => [d.code, d.at?.file])).toEqual([['YAML_SYNTAX', 'p.yaml']]);
  });

  it('`{}` is a valid policy with no rules', () => {
    const { policy, diagnostics } = parsePolicy('p.yaml', '{}\n');
    expect(diagnostics).toEqual([]);
    expect(policy!.forbid).toEqual([]);
  });

  it('a file that cannot be read is POLICY_NOT_FOUND, exit 2', () => {
    let err: unknown;
    try {
      loadPolicyFile(fixture('no-such-policy.yaml'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RepriseError);
    expect((err as RepriseError).code).toBe('POLICY_NOT_FOUND');
    expect((err as RepriseError).exit).toBe(2);
    expect((err as RepriseError).message).toContain('(ENOENT)');
    expect((err as RepriseError).hint).toContain('REPRISE_POLICY');
  });
});

describe('schema/policy.schema.json', () => {
  const schema = JSON.parse(readFileSync(join(root, 'schema', 'policy.schema.json'), 'utf8')) as Record<string, unknown>;

  it('is JSON Schema 2020-12 with a $id and a description on every property (its own or its definition\'s)', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.$id).toBe('https://reprise.dev/schema/policy.schema.json');
    const resolve = (n: Record<string, unknown>): Record<string, unknown> => {
      let cur = n;
      for (let i = 0; i < 8 && typeof cur.$ref === 'string'; i++) {
        let t: unknown = schema;
        for (const seg of (cur.$ref as string).replace(/^#\//, '').split('/')) t = (t as Record<string, unknown>)[seg];
        cur = t as Record<string, unknown>;
      }
      return cur;
    };
    const undocumented: string[] = [];
    let count = 0;
    const walk = (n: unknown, at: string): void => {
      if (n === null || typeof n !== 'object') return;
      if (Array.isArray(n)) return n.forEach((x, i) => walk(x, `${at}/${i}`));
      const o = n as Record<string, unknown>;
      if (typeof o.description !== 'string' && at !== '#' && !at.endsWith('/propertyNames')) {
        if (typeof o.type === 'string' || typeof o.$ref === 'string') {
          if (typeof resolve(o).description !== 'string') undocumented.push(at);
        }
      }
      for (const [k, v] of Object.entries(o)) {
        if (k === 'properties' && v && typeof v === 'object') count += Object.keys(v).length;
        walk(v, `${at}/${k}`);
      }
    };
    walk(schema, '#');
    expect(undocumented).toEqual([]);
    expect(count).toBeGreaterThanOrEqual(16);
  });
});
