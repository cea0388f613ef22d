/**
 * `reprise ci-comment` as a pipeline runs it: a subprocess of the build in a throwaway git
 * checkout of a pull request, asserting stdout (the Markdown comment), stderr and the exit code.
 * Needs the build (`npx tsc -p tsconfig.build.json`).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sideEffectTable } from '../../compiler/runbook.js';
import { jsonLines, noStackTrace } from '../cli/run.js';
import { compileIn, dryRunReport, git, prCheckout, reprise, writeReport } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function checkout(committed: boolean): { dir: string; plan: string } {
  const c = prCheckout('orders-tax-recompute', { committed });
  dirs.push(c.dir);
  return c;
}

function edit(dir: string, plan: string, f: (text: string) => string): void {
  const path = join(dir, plan);
  writeFileSync(path, f(readFileSync(path, 'utf8')));
}

/** The comment's `### <title>` section, up to the next `### `. */
function section(md: string, title: string): string {
  const start = md.indexOf(`\n### ${title}`);
  expect(start, `section ${title}`).toBeGreaterThan(-1);
  const end = md.indexOf('\n### ', start + 1);
  return md.slice(start, end === -1 ? undefined : end);
}

describe('reprise ci-comment: a new plan', () => {
  it('prints one Markdown comment: the marker first, the plan, a runbook summary, "new plan", no dry-run yet, the approve commands; exits 0', async () => {
    const { dir, plan } = checkout(false);
    const compiled = await compileIn(dir, plan);
    const r = reprise(['ci-comment', plan], dir, { GITHUB_BASE_REF: 'main' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const md = r.stdout;
    expect(md.split('\n')[0]).toBe('<!-- reprise:ci-comment plan=orders-tax-recompute -->');
    expect(md.match(/<!-- reprise:ci-comment/g)).toHaveLength(1);
    expect(md).toContain('## reprise · `orders-tax-recompute` revision 1');
    expect(md).toContain(`| Manifest hash | \`${compiled.hash}\` |`);
    expect(md).toContain(`| Run id | \`${compiled.runId}\` |`);
    expect(md).toContain('| Author | alice@example.com (may not approve this plan) |');
    expect(md).toContain('**Status:** 🆕 new plan · ⏳ no dry-run yet · ⏳ canary: 1 approval needed · ⏳ full: after the canary (2 approvals)');

    const summary = section(md, 'Runbook summary');
    expect(summary).toContain('| Window | `[2026-10-01T00:00:00.000Z, 2026-11-12T00:00:00.000Z)` (42d) |');
    expect(summary).toContain('| Count guard | 40,000 to 60,000 items, counted before anything runs |');
    expect(summary).toContain('600 items/s (capacity 2,000 − live 1,200 − backfill 200)');
    expect(summary).toContain(sideEffectTable(compiled.plan)); // the runbook's own table
    expect(summary).toContain('`invoice-corrected:{order_id}`');

    // GITHUB_BASE_REF=main is read as origin/main, where the plan does not exist yet.
    expect(section(md, 'Changes against `origin/main`')).toContain('🆕 **New plan**: `plans/orders-tax-recompute.yaml` does not exist at `origin/main`.');
    expect(section(md, 'Dry-run')).toContain(`No dry-run report yet (\`reports/${compiled.runId}.dry-run.report.json\`)`);

    const approvals = section(md, 'Approvals');
    expect(approvals).toContain('| `canary` | the manifest and the dry-run report (none yet) | 1 | not checked | **1** |');
    expect(approvals).toContain('| `full` | the manifest and the canary report (after the canary) | 2 | not checked | **2** |');
    expect(approvals).toContain(`\`\`\`sh\nnpx reprise approve plans/orders-tax-recompute.yaml --stage canary --key "$REPRISE_KEY" --approver "$REPRISE_APPROVER" --evidence reports/${compiled.runId}.dry-run.report.json\n\`\`\``);
    expect(approvals).toContain(`\`\`\`sh\nnpx reprise approve plans/orders-tax-recompute.yaml --stage full --key "$REPRISE_KEY" --approver "$REPRISE_APPROVER" --evidence reports/${compiled.runId}.canary.report.json\n\`\`\``);
    expect(approvals).toContain('not alice@example.com, the author');
    expect(md).not.toContain(dir); // no path of the machine that rendered it
    expect(md.endsWith('</sub>\n')).toBe(true);
  });

  it('is deterministic, and --json carries the same body with the marker and the figures', () => {
    const { dir, plan } = checkout(false);
    const a = reprise(['ci-comment', plan, '--base', 'origin/main'], dir);
    const b = reprise(['ci-comment', plan, '--base', 'origin/main'], dir);
    expect(a.code).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    const j = reprise(['--json', 'ci-comment', plan, '--base', 'origin/main'], dir);
    expect(j.code).toBe(0);
    const lines = jsonLines(j.stdout);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'result',
      marker: '<!-- reprise:ci-comment plan=orders-tax-recompute -->',
      plan: 'orders-tax-recompute',
      revision: 1,
      base: { ref: 'origin/main', kind: 'new' },
      dryRun: { kind: 'missing' },
      approvals: { canary: { min: 1, stillNeeded: 1, trustChecked: false }, full: { min: 2, stillNeeded: 2 } },
      body: a.stdout,
    });
  });

  it('exits 2 with the plan\'s errors, as validate prints them, when the plan is invalid', () => {
    const { dir, plan } = checkout(false);
    edit(dir, plan, (t) => t.replace('  concurrency: 4\n', '  concurrency: 40\n'));
    const r = reprise(['ci-comment', plan, '--base', 'origin/main'], dir);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error\[[A-Z_]+\]: .*concurrency/m);
    expect(r.stderr).toContain(`at ${plan}:`);
    expect(noStackTrace(r.stderr)).toBe(true);
  });

  it('escapes what the pull request writes: a hostile reason cannot add HTML, links or a marker', () => {
    const { dir, plan } = checkout(false);
    const hostile = '"x</details><img src=https://evil.example/p.gif> [ok](https://evil.example) | ✅ **approved** <!-- reprise:ci-comment plan=other -->"';
    edit(dir, plan, (t) => t.replace(/^reason: .*$/m, `reason: ${hostile}`));
    const r = reprise(['ci-comment', plan, '--base', 'origin/main'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/(^|[^\\])<img/m); // only as `\<img`, which renders as text
    expect(r.stdout).not.toContain('[ok](');
    expect(r.stdout.match(/(^|[^\\])<!-- reprise:ci-comment/gm)).toHaveLength(1);
    expect(r.stdout).toContain('\\<img src=https://evil.example/p.gif\\> \\[ok\\](https://evil.example) \\| ✅ \\*\\*approved\\*\\*');
  });
});

describe('reprise ci-comment: the diff against the base branch', () => {
  it('shows the field changes and, collapsed, what reprise diff prints for BASE:plan plan', () => {
    const { dir, plan } = checkout(true);
    edit(dir, plan, (t) => t.replace('revision: 1', 'revision: 2').replace('itemsPerSecond: 200', 'itemsPerSecond: 300'));
    const r = reprise(['ci-comment', plan, '--base', 'origin/main'], dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('**Status:** ✏️ changed since `origin/main`');
    const diff = section(r.stdout, 'Changes against `origin/main`');
    expect(diff).toContain('**2 plan fields changed**: the manifest hash changed from `sha256:');
    expect(diff).toContain('```diff\n~ revision: 1 -> 2\n~ rate.itemsPerSecond: 200 -> 300\n```');
    expect(diff).not.toContain('The revision is still');
    expect(diff).toContain('<details>\n<summary>Full diff: pinned files and the manifests (`reprise diff origin/main:plans/orders-tax-recompute.yaml plans/orders-tax-recompute.yaml`)</summary>');
    const cli = reprise(['diff', `origin/main:${plan}`, plan], dir);
    expect(cli.code).toBe(0);
    expect(diff).toContain(cli.stdout.trimEnd()); // exactly what `reprise diff` prints
    expect(diff).toContain('+      "itemsPerSecond": 300,');
    expect(diff).toMatch(/<\/details>\s*$/);
  });

  it('warns when the plan changed but its revision did not, and names a changed handler', () => {
    const { dir, plan } = checkout(true);
    edit(dir, plan, (t) => t.replace('maxConsecutiveErrors: 20', 'maxConsecutiveErrors: 10'));
    edit(dir, 'plans/orders-tax-recompute.handler.ts', (t) => `${t}\n// reviewed\n`);
    const r = reprise(['ci-comment', plan, '--base', 'origin/main'], dir);
    expect(r.code).toBe(0);
    const diff = section(r.stdout, 'Changes against `origin/main`');
    expect(diff).toContain('**1 plan field changed**, **the handler changed**: the manifest hash changed');
    expect(diff).toContain('> ⚠️ The revision is still 1: any change to a reviewed plan needs a new revision.');
    expect(diff).toContain('~ abort.maxConsecutiveErrors: 20 -> 10');
  });

  it('says "no change" when the plan compiles to the base\'s hash, with no diff block', () => {
    const { dir, plan } = checkout(true);
    const r = reprise(['ci-comment', plan, '--base', 'origin/main'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('**Status:** unchanged since `origin/main`');
    const diff = section(r.stdout, 'Changes against `origin/main`');
    expect(diff).toContain('No change: the plan compiles to the same manifest hash as at `origin/main`.');
    expect(diff).not.toContain('<details>');
  });

  it('defaults --base from REPRISE_BASE_REF, then CI_MERGE_REQUEST_TARGET_BRANCH_NAME, else origin/main', () => {
    const { dir, plan } = checkout(true);
    git(dir, 'update-ref', 'refs/remotes/origin/release', 'HEAD');
    expect(reprise(['ci-comment', plan], dir, { CI_MERGE_REQUEST_TARGET_BRANCH_NAME: 'release' }).stdout).toContain('### Changes against `origin/release`');
    expect(reprise(['ci-comment', plan], dir, { REPRISE_BASE_REF: 'HEAD', GITHUB_BASE_REF: 'release' }).stdout).toContain('### Changes against `HEAD`');
    expect(reprise(['ci-comment', plan], dir).stdout).toContain('### Changes against `origin/main`');
  });

  it('still prints the comment when the base cannot be read, and says why on stderr; refuses a --base that looks like an option', () => {
    const { dir, plan } = checkout(false);
    const r = reprise(['ci-comment', plan, '--base', 'origin/nope'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('⚠️ Could not read `origin/nope`: git does not know the revision origin/nope — fetch it first (e.g. git fetch origin nope), or pass --base.');
    expect(r.stderr).toMatch(/^warning: no diff: cannot read origin\/nope/);
    const bad = reprise(['ci-comment', plan, '--base=--output=/tmp/x'], dir);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error\[USAGE\]: --base "--output=\/tmp\/x" is not a git revision/);
  });
});

describe('reprise ci-comment: the dry-run report and the approvals', () => {
  /** A checkout with a dry-run report, two trusted reviewers and one untrusted signer, and their canary approvals. */
  async function reviewed(): Promise<{ dir: string; plan: string; runId: string; report: string; hash: string }> {
    const { dir, plan } = checkout(false);
    const compiled = await compileIn(dir, plan);
    const report = dryRunReport(compiled, {
      counts: { selected: 48_213, processed: 48_213, succeeded: 48_211, failed: 2, skippedOutsideWindow: 0, remaining: 0 },
      errors: { total: 2, samples: [{ itemKey: '1043877', attempt: 1, message: 'no tax rate for region eu-es', at: '2026-11-14T10:00:30.000Z' }] },
    });
    const path = writeReport(dir, report);
    for (const who of ['bob', 'erin', 'carol']) expect(reprise(['keygen', '--out', `keys/${who}.key`, '--comment', who], dir).code).toBe(0);
    mkdirSync(join(dir, 'pipeline'));
    const pub = (who: string): string => readFileSync(join(dir, 'keys', `${who}.key.pub`), 'utf8').trim();
    writeFileSync(join(dir, 'pipeline', 'allowed_signers'), `bob@example.com ${pub('bob')}\nerin@example.com ${pub('erin')}\n`);
    for (const who of ['bob', 'carol']) {
      const a = reprise(['approve', plan, '--stage', 'canary', '--key', `keys/${who}.key`, '--approver', `${who}@example.com`, '--evidence', path], dir);
      expect(a.stderr).toBe('');
      expect(a.code).toBe(0);
    }
    return { dir, plan, runId: compiled.runId, report: path, hash: report.hash };
  }

  it('summarizes the dry-run report; with --trust counts the valid approvals and lists every file with its verdict', async () => {
    const w = await reviewed();
    const r = reprise(['ci-comment', w.plan, '--base', 'origin/main', '--trust', 'pipeline/allowed_signers', '--artifacts-url', 'https://ci.example/runs/42'], w.dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const md = r.stdout;
    expect(md).toContain('**Status:** 🆕 new plan · ✅ dry-run completed (48,213 items, 2 failed) · ✅ canary approved · ⏳ full: after the canary (2 approvals)');
    const dry = section(md, 'Dry-run');
    expect(dry).toContain(`✅ **completed** in 1m 00s, started 2026-11-14T10:00:00.000Z. Report \`${w.hash}\` (\`${w.report}\`).`);
    expect(dry).toContain('| 48,213 | 48,213 | 48,211 | 2 | 0 |');
    expect(dry).toContain('Count guard: counted **48,213** at 2026-11-14T09:59:59.000Z; the plan expects 40,000 to 60,000: ✅ within bounds.');
    expect(dry).toContain('| `email_customer` | http | **suppress** | 48,213 | never applied: recorded as suppressed |');
    expect(dry).toContain('| `publish_invoice_corrected` | redis-stream | **dedupe** | 48,213 | applied at most once per dedupe key (`invoice-corrected:{order_id}`) |');
    expect(dry).toContain('Calls by policy: replay 48,213 · suppress 48,213 · dedupe 48,213.');
    expect(dry).toContain('**2** items failed (< 0.1% of processed); the first:');
    expect(dry).toContain('| `orders` | PostgreSQL system_identifier `7315264850113569834`, database `orders` |');

    const approvals = section(md, 'Approvals');
    expect(approvals).toContain(`| \`canary\` | the manifest and the dry-run report \`${w.hash.slice(0, 19)}…\` | 1 | 1 | ✅ 0 |`);
    expect(approvals).toContain('| `full` | the manifest and the canary report (after the canary) | 2 | 0 | **2** |');
    expect(approvals).not.toContain('Signatures were not checked');
    expect(approvals).toContain('**`canary`** is approved by bob@example.com. The pipeline runs it: `npx reprise run plans/orders-tax-recompute.yaml --stage canary`.');
    expect(approvals).not.toContain('--stage canary --key');
    expect(approvals).toContain(`--stage full --key "$REPRISE_KEY" --approver "$REPRISE_APPROVER" --evidence reports/${w.runId}.canary.report.json`);
    expect(approvals).toMatch(/- ✅ `approvals\/orders-tax-recompute\.r1\.canary\.bob-example-com\.approval\.json` \(canary\): bob@example\.com, key `SHA256:[^`]+`, expires 20\d\d-/);
    expect(approvals).toMatch(/- ❌ `approvals\/orders-tax-recompute\.r1\.canary\.carol-example-com\.approval\.json` \(canary\): carol@example\.com — `APPROVAL_UNTRUSTED_KEY` signed by key SHA256:\S+, which is not in the trust file /);
    expect(md).toContain('[CI artifacts](https://ci.example/runs/42)');

    // The same from REPRISE_TRUST, as the pipelines set it.
    expect(reprise(['ci-comment', w.plan, '--base', 'origin/main', '--artifacts-url', 'https://ci.example/runs/42'], w.dir, { REPRISE_TRUST: 'pipeline/allowed_signers' }).stdout).toBe(md);
  });

  it('without a trust file lists the approval files unverified and counts none', async () => {
    const w = await reviewed();
    const r = reprise(['ci-comment', w.plan, '--base', 'origin/main'], w.dir);
    expect(r.code).toBe(0);
    const approvals = section(r.stdout, 'Approvals');
    expect(approvals).toContain('| 1 | not checked | **1** |');
    expect(approvals).toContain('> ⚠️ Signatures were not checked: this job has no trust file');
    expect(approvals).toContain('- ❔ `approvals/orders-tax-recompute.r1.canary.bob-example-com.approval.json` (canary): claims bob@example.com, not verified');
    expect(approvals).toContain('- ❔ `approvals/orders-tax-recompute.r1.canary.carol-example-com.approval.json` (canary): claims carol@example.com, not verified');
    expect(approvals).toContain(`--stage canary --key "$REPRISE_KEY" --approver "$REPRISE_APPROVER" --evidence ${w.report}`);
  });

  it('refuses approvals of another dry-run: a new report makes the earlier approvals stale', async () => {
    const w = await reviewed();
    const compiled = await compileIn(w.dir, w.plan);
    const again = dryRunReport(compiled, { startedAt: '2026-11-15T10:00:00.000Z' });
    writeReport(w.dir, again);
    const r = reprise(['ci-comment', w.plan, '--base', 'origin/main', '--trust', 'pipeline/allowed_signers'], w.dir);
    expect(r.code).toBe(0);
    const approvals = section(r.stdout, 'Approvals');
    expect(approvals).toContain('| 1 | 0 | **1** |');
    expect(approvals).toContain('`APPROVAL_WRONG_EVIDENCE` cites dry-run report');
  });

  it('flags a report edited after it was written (do not approve), on stderr too, and still exits 0', async () => {
    const { dir, plan } = checkout(false);
    const compiled = await compileIn(dir, plan);
    const path = writeReport(dir, dryRunReport(compiled));
    const edited = JSON.parse(readFileSync(join(dir, path), 'utf8'));
    edited.errors.total = 0;
    edited.counts.failed = 0;
    edited.count.value = 50_000;
    writeFileSync(join(dir, path), JSON.stringify(edited, null, 2));
    const r = reprise(['ci-comment', plan, '--base', 'origin/main'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`⚠️ **Do not approve on \`${path}\`**: \`REPORT_HASH_MISMATCH\``);
    expect(r.stdout).toContain('**`canary`** cannot be approved yet: the dry-run report is not usable');
    expect(r.stdout).not.toContain('--stage canary --key');
    expect(r.stderr).toContain(`warning: ${path}: REPORT_HASH_MISMATCH`);
  });

  it('says a dry-run that did not complete cannot be approved on', async () => {
    const { dir, plan } = checkout(false);
    const compiled = await compileIn(dir, plan);
    writeReport(dir, dryRunReport(compiled, { outcome: 'aborted', abort: { reason: 'signal', detail: 'interrupted (SIGINT/SIGTERM)' } }));
    const r = reprise(['ci-comment', plan, '--base', 'origin/main'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('· ❌ dry-run aborted ·');
    expect(section(r.stdout, 'Dry-run')).toContain('❌ **aborted** (signal: interrupted (SIGINT/SIGTERM)): the canary cannot be approved on this report; dry-run again');
    expect(section(r.stdout, 'Approvals')).toContain('**`canary`** cannot be approved yet');
  });
});
