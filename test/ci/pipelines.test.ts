/**
 * The ready-to-use pipelines (docs/ci/github-actions.yml, docs/ci/gitlab-ci.yml) call reprise as
 * it is: every `reprise …` / `npx reprise …` in their shell scripts names a command the CLI has,
 * with only options that command (or the program) accepts and as many arguments as it takes.
 * Checked against the commander program cli/main.ts builds, so a renamed flag breaks this test,
 * not a user's pipeline.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ciCommentMarker } from '../../ci/comment.js';
import { buildProgram } from '../../cli/main.js';
import { shellWords } from '../support/shell.js';
import { root } from './helpers.js';

const PIPELINES = ['docs/ci/github-actions.yml', 'docs/ci/gitlab-ci.yml'];
const SCRIPT_KEYS = new Set(['run', 'script', 'before_script', 'after_script']);

/** Every shell script of a pipeline: GitHub `run:` steps, GitLab `script:` / `before_script:` / `after_script:`. */
function scripts(doc: unknown): string[] {
  const out: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node === null || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (SCRIPT_KEYS.has(k) && typeof v === 'string') out.push(v);
      else if (SCRIPT_KEYS.has(k) && Array.isArray(v)) out.push(...v.filter((x): x is string => typeof x === 'string'));
      else walk(v);
    }
  };
  walk(doc);
  return out;
}


/** Each reprise command line of a script, as words after `reprise`. */
function repriseCalls(script: string): string[][] {
  const calls: string[][] = [];
  const lines = script.replace(/\\\n/g, ' ').split('\n').filter((l) => !/^\s*#/.test(l));
  for (const line of lines) {
    for (const m of line.matchAll(/(?:^|[\s;&|(`])(?:npx\s+)?reprise\s+(?=-|[a-z])/g)) {
      calls.push(shellWords(line.slice(m.index + m[0].length)));
    }
  }
  return calls;
}

const program = buildProgram();

function optionOf(cmd: Command, flag: string): Option | undefined {
  return [...cmd.options, ...program.options].find((o) => o.long === flag || o.short === flag);
}

/** Problems of one call: unknown command, unknown option, missing option value, argument count. */
function check(call: string[]): string[] {
  const problems: string[] = [];
  const rest = [...call];
  while (rest[0]?.startsWith('-')) {
    const [flag, inline] = rest.shift()!.split('=', 2) as [string, string | undefined];
    const o = program.options.find((x) => x.long === flag);
    if (!o) problems.push(`unknown global option ${flag}`);
    else if (o.required && inline === undefined) rest.shift();
  }
  const name = rest.shift();
  const cmd = program.commands.find((c) => c.name() === name);
  if (!cmd) return [...problems, `unknown command ${String(name)}`];
  const args: string[] = [];
  while (rest.length) {
    const w = rest.shift()!;
    if (!w.startsWith('-') || w === '-') {
      args.push(w);
      continue;
    }
    const [flag, inline] = w.split('=', 2) as [string, string | undefined];
    const o = optionOf(cmd, flag);
    if (!o) {
      problems.push(`${name}: unknown option ${flag}`);
      continue;
    }
    if ((o.required || o.optional) && inline === undefined) {
      const value = rest.shift();
      if (o.required && (value === undefined || value.startsWith('-'))) problems.push(`${name}: ${flag} needs a value`);
      if (o.argChoices && value !== undefined && !value.startsWith('$') && !o.argChoices.includes(value)) problems.push(`${name}: ${flag} ${value} is not one of ${o.argChoices.join(', ')}`);
    }
  }
  const declared = cmd.registeredArguments;
  const variadic = declared.some((a) => a.variadic);
  const required = declared.filter((a) => a.required).length;
  if (args.length < required) problems.push(`${name}: ${args.length} argument(s), needs ${required}`);
  if (!variadic && args.length > declared.length) problems.push(`${name}: ${args.length} argument(s), takes at most ${declared.length}`);
  return problems;
}

describe.each(PIPELINES.map((p) => [p]))('%s', (file) => {
  const text = readFileSync(join(root, file), 'utf8');
  const doc = parse(text) as Record<string, unknown>;
  const calls = scripts(doc).flatMap(repriseCalls);

  it('is YAML whose scripts call reprise for every step of the workflow', () => {
    expect(doc).toBeTypeOf('object');
    const names = new Set(calls.map((c) => c.find((w) => !w.startsWith('-') && !/^\$/.test(w))));
    for (const step of ['validate', 'compile', 'diff', 'dry-run', 'ci-comment', 'run']) expect([...names], step).toContain(step);
  });

  it('calls only commands and options reprise has', () => {
    const problems = calls.flatMap((c) => check(c).map((p) => `${p}  (reprise ${c.join(' ')})`));
    expect(problems).toEqual([]);
  });

  it('runs only the stages canary and full, from the default branch, with the approvals of the repository', () => {
    const runs = calls.filter((c) => c.includes('run'));
    expect(runs.length).toBeGreaterThan(0);
    for (const c of runs) {
      expect(c).toContain('--stage');
      expect(c[c.indexOf('--approvals') + 1]).toBe('approvals');
      expect(c).not.toContain('--trust'); // from REPRISE_TRUST, written from a protected secret/variable
    }
  });

  it('finds its own sticky comment by the marker ci-comment prints first', () => {
    expect(ciCommentMarker('orders-tax-recompute').startsWith('<!-- reprise:ci-comment ')).toBe(true);
    expect(text).toContain("marker.startsWith('<!-- reprise:ci-comment ')");
    expect(text).toContain("split('\\n', 1)[0] === marker");
  });
});

describe('the pipeline checker', () => {
  it('catches an unknown command, an unknown option and a missing argument', () => {
    expect(check(['frobnicate'])).toEqual(['unknown command frobnicate']);
    expect(check(['dry-run', 'plans/x.yaml', '--report', 'reports'])).toContain('dry-run: unknown option --report');
    expect(check(['diff', 'plans/x.yaml'])).toEqual(['diff: 1 argument(s), needs 2']);
    expect(check(['--json', 'ci-comment', '"$plan"', '--base', '$BASE_REF', '--reports=reports'])).toEqual([]);
    expect(check(['schema', 'report'])).toEqual([]);
  });

  it('reads calls inside substitutions, after npx, across line continuations, and not in comments', () => {
    const calls = repriseCalls('# npx reprise nope\nsummary=$(npx reprise --json ci-comment "$plan" --base "$BASE_REF")\nnpx reprise run "$plan" \\\n  --stage canary > out.txt');
    expect(calls).toEqual([
      ['--json', 'ci-comment', '$plan', '--base', '$BASE_REF'],
      ['run', '$plan', '--stage', 'canary'],
    ]);
  });
});
