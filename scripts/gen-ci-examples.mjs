#!/usr/bin/env node
// Generates docs/ci/examples/<plan>.md: what `reprise ci-comment` posts on the pull request that
// adds each example plan of plans/examples/. Each example is rendered in a throwaway git
// repository where `origin/main` does not have the plan yet (a new plan), with no approvals and
// no trust file, and with the illustrative dry-run report docs/ci/examples/fixtures/<plan>.dry-run.json
// sealed for the plan's current manifest (a dry-run needs the plan's databases; the fixture
// keeps the examples deterministic). `npm run gen:ci-examples` writes them; `--check` exits 1
// when a committed example is stale (test/ci/examples.test.ts runs it, and compares each example
// with the output of the CLI itself).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const EXAMPLES_DIR = join(root, 'plans', 'examples');
export const OUT_DIR = 'docs/ci/examples';
export const FIXTURES_DIR = `${OUT_DIR}/fixtures`;
/** The base the examples are diffed against; the plan does not exist there. */
export const BASE_REF = 'origin/main';
/** Where the example comments are separated from the page's own header. */
export const COMMENT_SEPARATOR = '\n\n---\n\n';

const { compilePlanFile } = await tsImport('../compiler/compile.ts', import.meta.url);
const { finalizeReport, previewDiff, plainRows, reportJsonText, emptyEffectCounts } = await tsImport('../executor/reports/index.ts', import.meta.url);
const { collectCiComment } = await tsImport('../ci/collect.ts', import.meta.url);
const { renderCiComment } = await tsImport('../ci/comment.ts', import.meta.url);

/** The example plans, by name, in file order. */
export const EXAMPLES = readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -'.yaml'.length)).sort();

function git(cwd, args) {
  execFileSync('git', ['-c', 'core.hooksPath=/dev/null', '-c', 'commit.gpgsign=false', '-c', 'user.name=reprise', '-c', 'user.email=examples@example.invalid', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The fixture as a sealed `reprise/report@1` dry-run report of `compiled`. */
export function sealFixture(fixture, compiled) {
  const f = JSON.parse(JSON.stringify(fixture).replaceAll('$RUN_ID', compiled.runId));
  const plan = compiled.plan;
  const expect = (plan.selection ?? plan.source).expect;
  return finalizeReport({
    kind: 'reprise/report@1',
    runId: compiled.runId,
    plan: plan.name,
    revision: plan.revision,
    manifest: compiled.hash,
    stage: 'dry-run',
    outcome: 'completed',
    startedAt: f.startedAt,
    finishedAt: f.finishedAt,
    durationMs: f.durationMs,
    count: { value: f.count.value, expect, countedAt: f.count.countedAt },
    counts: f.counts,
    effects: plan.sideEffects.map((e) => ({ name: e.name, kind: e.kind, policy: e.backfill, delivery: e.delivery, live: e.live, counts: { ...emptyEffectCounts(), captured: f.captured[e.name] ?? 0 } })),
    errors: f.errors,
    throttle: { throttledMs: 0, episodes: [] },
    throughput: [],
    validations: [],
    fingerprints: f.fingerprints,
    canary: null,
    preview: f.preview.map((p) => ({ effect: p.effect, itemKey: p.itemKey, args: p.args, before: plainRows(p.before) ?? [], after: plainRows(p.after) ?? [], diff: previewDiff(p.before, p.after), method: 'executed' })),
    abort: null,
    workers: 1,
  });
}

/**
 * A throwaway git repository as a pull request's checkout: an empty commit as `origin/main`, the
 * example's files in plans/examples/ (uncommitted, as new), and its sealed dry-run report in
 * reports/. The caller removes `dir`.
 */
export async function exampleWorkspace(name) {
  const dir = mkdtempSync(join(tmpdir(), 'reprise-ci-example-'));
  git(dir, ['init', '-q']);
  git(dir, ['commit', '-q', '--allow-empty', '-m', 'base']);
  git(dir, ['update-ref', 'refs/remotes/origin/main', 'HEAD']);
  mkdirSync(join(dir, 'plans', 'examples'), { recursive: true });
  for (const f of readdirSync(EXAMPLES_DIR).filter((x) => x.startsWith(`${name}.`))) copyFileSync(join(EXAMPLES_DIR, f), join(dir, 'plans', 'examples', f));
  const plan = `plans/examples/${name}.yaml`;
  const compiled = await compilePlanFile(join(dir, plan));
  const fixture = JSON.parse(readFileSync(join(root, FIXTURES_DIR, `${name}.dry-run.json`), 'utf8'));
  const report = sealFixture(fixture, compiled);
  mkdirSync(join(dir, 'reports'), { recursive: true });
  writeFileSync(join(dir, 'reports', `${compiled.runId}.dry-run.report.json`), reportJsonText(report));
  return { dir, plan, runId: compiled.runId };
}

/** The example page: a header, then the comment exactly as `reprise ci-comment` prints it. */
export function examplePage(name, comment) {
  return [
    `<!-- generated by scripts/gen-ci-examples.mjs: do not edit; run \`npm run gen:ci-examples\` -->`,
    '',
    `# Pull-request comment: ${name}`,
    '',
    `What \`reprise ci-comment plans/examples/${name}.yaml\` prints, and the pipeline posts, on the pull request that adds [this example plan](../../../plans/examples/${name}.yaml):`,
    `the plan is new at \`${BASE_REF}\`, nobody has approved it yet, and the job has no trust file. The dry-run report is illustrative:`,
    `[fixtures/${name}.dry-run.json](fixtures/${name}.dry-run.json), sealed for the plan's current manifest. See [the CI guide](../../ci.md).`,
  ].join('\n') + COMMENT_SEPARATOR + comment;
}

/** The comment for one example, rendered by the library in its workspace. */
export async function renderExample(name) {
  const ws = await exampleWorkspace(name);
  try {
    const input = await collectCiComment({ plan: ws.plan, cwd: ws.dir, base: BASE_REF, env: {}, now: new Date('2026-11-14T12:00:00Z') });
    return renderCiComment(input);
  } finally {
    rmSync(ws.dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const name of EXAMPLES) {
    const path = join(root, OUT_DIR, `${name}.md`);
    const text = examplePage(name, await renderExample(name));
    let current = '';
    try { current = readFileSync(path, 'utf8'); } catch { /* missing */ }
    if (current === text) continue;
    if (check) {
      console.error(`stale: ${OUT_DIR}/${name}.md (run npm run gen:ci-examples)`);
      stale++;
    } else {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
      console.log(`wrote ${OUT_DIR}/${name}.md`);
    }
  }
  const extra = readdirSync(join(root, OUT_DIR)).filter((f) => f.endsWith('.md') && !EXAMPLES.includes(f.slice(0, -3)));
  for (const f of extra) {
    console.error(`${check ? 'stale' : 'left alone'}: ${OUT_DIR}/${f} has no example plan`);
    if (check) stale++;
  }
  if (stale) process.exit(1);
}
