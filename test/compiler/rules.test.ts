/**
 * Every diagnostic code has a failing fixture under fixtures/, and each fixture reports exactly
 * that code at the position written here (line:col of the field the message is about).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DIAGNOSTIC_CODES } from '../../compiler/codes.js';
import { checkPlan } from '../../compiler/compile.js';
import { isInstant } from '../../compiler/timestamp.js';
import { fixture, problemsOf, root, textSource } from './helpers.js';

/** fixture file -> the one problem it must produce. */
const CASES: Array<{ file: string; code: string; line: number; col: number }> = [
  // YAML
  { file: 'yaml-syntax.yaml', code: 'YAML_SYNTAX', line: 16, col: 1 },
  { file: 'duplicate-key.yaml', code: 'DUPLICATE_KEY', line: 6, col: 1 },
  { file: 'plan-not-a-mapping.yaml', code: 'PLAN_NOT_A_MAPPING', line: 2, col: 1 },
  // schema
  { file: 'unknown-key.yaml', code: 'UNKNOWN_KEY', line: 14, col: 3 },
  { file: 'missing-field.yaml', code: 'MISSING_FIELD', line: 11, col: 3 },
  { file: 'invalid-value.yaml', code: 'INVALID_VALUE', line: 23, col: 15 },
  { file: 'invalid-format.yaml', code: 'INVALID_FORMAT', line: 3, col: 7 },
  { file: 'invalid-timestamp.yaml', code: 'INVALID_TIMESTAMP', line: 14, col: 20 },
  { file: 'out-of-range.yaml', code: 'OUT_OF_RANGE', line: 4, col: 11 },
  { file: 'unknown-effect-kind.yaml', code: 'UNKNOWN_EFFECT_KIND', line: 20, col: 11 },
  // rules
  { file: 'source-choice.yaml', code: 'SOURCE_CHOICE', line: 16, col: 1 },
  { file: 'window-order.yaml', code: 'WINDOW_ORDER', line: 14, col: 20 },
  { file: 'window-after-cutoff.yaml', code: 'WINDOW_AFTER_CUTOFF', line: 14, col: 47 },
  { file: 'source-window-timestamp.yaml', code: 'SOURCE_WINDOW_TIMESTAMP', line: 13, col: 3 },
  { file: 'expect-range.yaml', code: 'EXPECT_RANGE', line: 15, col: 18 },
  { file: 'unknown-parameter.yaml', code: 'UNKNOWN_PARAMETER', line: 12, col: 10 },
  { file: 'window-not-bound.yaml', code: 'WINDOW_NOT_BOUND', line: 12, col: 10 },
  { file: 'undeclared-connection.yaml', code: 'UNDECLARED_CONNECTION', line: 21, col: 17 },
  { file: 'connection-kind-conflict.yaml', code: 'CONNECTION_KIND_CONFLICT', line: 27, col: 17 },
  { file: 'probe-kind.yaml', code: 'PROBE_KIND', line: 27, col: 7 },
  { file: 'duplicate-effect.yaml', code: 'DUPLICATE_EFFECT', line: 25, col: 11 },
  { file: 'reserved-effect-name.yaml', code: 'RESERVED_EFFECT_NAME', line: 19, col: 11 },
  { file: 'dedupe-no-store.yaml', code: 'DEDUPE_NO_STORE', line: 28, col: 15 },
  { file: 'dedupe-key-missing.yaml', code: 'DEDUPE_KEY_MISSING', line: 29, col: 15 },
  { file: 'dedupe-live-unsafe.yaml', code: 'DEDUPE_LIVE_UNSAFE', line: 30, col: 11 },
  { file: 'dedupe-fields-unused.yaml', code: 'DEDUPE_FIELDS_UNUSED', line: 23, col: 5 },
  { file: 'dedupe-key-placeholder.yaml', code: 'DEDUPE_KEY_PLACEHOLDER', line: 32, col: 16 },
  { file: 'template-syntax.yaml', code: 'TEMPLATE_SYNTAX', line: 31, col: 16 },
  { file: 'non-idempotent-sql.yaml', code: 'NON_IDEMPOTENT_SQL', line: 23, col: 17 },
  { file: 'reverse-needs-preview.yaml', code: 'REVERSE_NEEDS_PREVIEW', line: 26, col: 18 },
  { file: 'file-not-found.yaml', code: 'FILE_NOT_FOUND', line: 17, col: 12 },
  { file: 'handler-extension.yaml', code: 'HANDLER_EXTENSION', line: 17, col: 12 },
  { file: 'concurrency-over-connections.yaml', code: 'CONCURRENCY_OVER_CONNECTIONS', line: 26, col: 16 },
  { file: 'live-headroom.yaml', code: 'LIVE_HEADROOM', line: 26, col: 19 },
  { file: 'duration-zero.yaml', code: 'DURATION_ZERO', line: 26, col: 15 },
  { file: 'canary-size.yaml', code: 'CANARY_SIZE', line: 26, col: 9 },
];

describe('diagnostic fixtures', () => {
  it('the base fixture is valid', () => {
    expect(problemsOf(fixture('valid.yaml'))).toEqual([]);
  });

  it.each(CASES)('$file reports $code at $line:$col', ({ file, code, line, col }) => {
    const problems = problemsOf(fixture(file));
    expect(problems.map((p) => `${p.code} ${p.at?.line}:${p.at?.col}`)).toEqual([`${code} ${line}:${col}`]);
    const [p] = problems;
    expect(p!.at!.file).toBe(fixture(file));
    expect(p!.message.length).toBeGreaterThan(10);
    expect(p!.hint, `${code} has a hint`).toBeTruthy();
  });
});

/** The codes a source file reports, by reading it (so a new code cannot ship without a fixture). */
function codesIn(rel: string, pattern: RegExp): string[] {
  const text = readFileSync(join(root, rel), 'utf8');
  return [...text.matchAll(pattern)].map((m) => m[1]!);
}

describe('code catalog', () => {
  const emitted = new Set([
    ...codesIn('compiler/rules.ts', /report\('([A-Z_]+)'/g),
    ...codesIn('compiler/validate-schema.ts', /code: '([A-Z_]+)'/g),
    ...codesIn('compiler/load.ts', /'(DUPLICATE_KEY|YAML_SYNTAX)'/g),
    ...codesIn('compiler/compile.ts', /code: '([A-Z_]+)'/g),
  ]);

  it('reads the emitted codes from the sources', () => {
    expect(emitted.size).toBeGreaterThan(30);
    expect(emitted).toContain('WINDOW_ORDER');
    expect(emitted).toContain('UNKNOWN_KEY');
  });

  it('every emitted code has a fixture', () => {
    const tested = new Set(CASES.map((c) => c.code));
    expect([...emitted].filter((c) => !tested.has(c))).toEqual([]);
  });

  it('the catalog (and so docs/plan-reference.md) documents exactly the emitted plan codes', () => {
    const documented = DIAGNOSTIC_CODES.filter((c) => c.stage !== 'input').map((c) => c.code);
    expect([...documented].sort()).toEqual([...emitted].sort());
    expect(new Set(DIAGNOSTIC_CODES.map((c) => c.code)).size).toBe(DIAGNOSTIC_CODES.length);
  });
});

describe('several problems at once', () => {
  it('reports the three independent mistakes of one plan, in file order', () => {
    const problems = problemsOf(fixture('three-mistakes.yaml'));
    expect(problems.map((p) => `${p.code} ${p.at?.line}:${p.at?.col}`)).toEqual([
      'WINDOW_ORDER 14:20',
      'UNKNOWN_KEY 18:3',
      'UNDECLARED_CONNECTION 22:17',
    ]);
    expect(problems[1]!.hint).toContain('timeoutMs');
  });
});

describe('timestamps', () => {
  const valid = readFileSync(fixture('valid.yaml'), 'utf8');
  const withStart = (ts: string) => checkPlan(textSource(valid.replace('start: 2026-01-01T00:00:00Z', `start: "${ts}"`), fixture(''))).diagnostics;

  it.each(['2026-06-30T23:59:60Z', '2026-02-30T00:00:00Z', '2026-13-01T00:00:00Z', '2026-01-01T00:00:00+25:00', '2026-01-01T00:00:00', '2026-01-01'])(
    'refuses %s as INVALID_TIMESTAMP at its position (never an internal error)',
    (ts) => {
      expect(withStart(ts).map((d) => `${d.code} ${d.at?.line}:${d.at?.col}`)).toEqual(['INVALID_TIMESTAMP 14:20']);
    },
  );

  it.each(['2024-02-29T00:00:00Z', '2026-01-01T01:00:00+01:00', '2026-01-01t00:00:00.5z'])('accepts %s', (ts) => {
    expect(withStart(ts)).toEqual([]);
  });

  it('isInstant agrees with Date on every date it accepts', () => {
    for (const ts of ['2026-01-31T23:59:59.999Z', '2000-02-29T12:00:00-05:30', '1999-12-31 23:59:59Z']) {
      expect(isInstant(ts), ts).toBe(true);
      expect(Number.isFinite(Date.parse(ts.replace(' ', 'T')))).toBe(true);
    }
    expect(isInstant('2100-02-29T00:00:00Z')).toBe(false);
    expect(isInstant('2000-02-29T00:00:00Z')).toBe(true);
    expect(isInstant('0000-02-29T00:00:00Z')).toBe(true);
  });
});

describe('durations', () => {
  const valid = readFileSync(fixture('valid.yaml'), 'utf8');
  it('reports a duration too long to represent as OUT_OF_RANGE at its position (never an internal error)', () => {
    const problems = checkPlan(textSource(`${valid}rate:\n  checkEvery: 99999999999999999d\n`, fixture(''))).diagnostics;
    expect(problems.map((d) => `${d.code} ${d.at?.line}:${d.at?.col}`)).toEqual(['OUT_OF_RANGE 26:15']);
  });
});
