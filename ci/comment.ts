/**
 * The pull-request comment (`reprise ci-comment`): one Markdown document a CI job posts on the
 * pull request that adds or changes a plan, and updates in place on every push. It says what the
 * plan will do (a runbook summary), what changed against the base branch, what the dry-run found,
 * and which approvals are still needed, with the exact command to sign each.
 *
 * A pure function of its input (ci/collect.ts reads the files): no clock, no environment, no
 * absolute paths, so the same plan, base, reports and approvals render the same bytes — a bot
 * can compare before updating, and the examples in docs/ci/examples/ are checked by a test.
 * Everything that comes from the pull request or from data (reason, approvers, item keys, error
 * messages) is escaped: a hostile plan cannot fake a section, a link or an approval.
 */
import type { Compiled } from '../compiler/compile.js';
import { formatChange, formatDiff, type PlanDiff } from '../compiler/diff.js';
import { formatDuration } from '../compiler/duration.js';
import { approxDuration, effectSentence, headroom, orderingText, sideEffectTable } from '../compiler/runbook.js';
import { formatCount, formatElapsed, formatPercent, truncate } from '../executor/reports/format.js';
import { code, fence, text } from '../executor/reports/markdown.js';
import type { Plan } from '../schema/manifest.types.js';
import type { Report } from '../schema/report.types.js';
import type { BaseRevision } from './base.js';

/** A report the comment looks for in `--reports`, and what became of it. */
export type ReportLookup =
  /** No file at `path`: the stage has not run (or its report was not kept). */
  | { kind: 'missing'; path: string }
  /** A report of this run (id and manifest), its hash checked. */
  | { kind: 'found'; path: string; report: Report }
  /** A file that cannot be trusted or is not this run's: edited after it was written, unreadable, another manifest. */
  | { kind: 'unusable'; path: string; code: string; message: string };

/** The approval files of this plan revision for one stage, as the executor would judge them. */
export interface StageApprovals {
  stage: 'canary' | 'full';
  /** `approvals.<stage>.min` of the plan (at least 1). */
  min: number;
  /** Signatures and keys were checked against a trust file. Without one, every file is `unverified`. */
  trustChecked: boolean;
  /** The report each approval must cite was available and compared. */
  evidenceChecked: boolean;
  /** Valid approvals, one per distinct principal and key. */
  accepted: Array<{ file: string; approver: string; key: string; expiresAt: string }>;
  /** Approvals the executor would refuse, with its code and reason. */
  refused: Array<{ file: string; approver: string | null; code: string; message: string }>;
  /** Approval files found but not checked (no trust file): who each claims to be. */
  unverified: Array<{ file: string; approver: string | null }>;
}

export interface CiCommentInput {
  compiled: Pick<Compiled, 'plan' | 'manifest' | 'hash' | 'runId'>;
  /** The plan file as the pipeline names it (`plans/x.yaml`), used in the commands shown. */
  planPath: string;
  base: BaseRevision;
  /** `--reports` and `--approvals` as given, used in the commands shown. */
  reportsDir: string;
  approvalsDir: string;
  dryRun: ReportLookup;
  canary: ReportLookup;
  approvals: { canary: StageApprovals; full: StageApprovals };
  /** Where reviewers download the manifest, runbook and reports (the CI run's page), if known. */
  artifactsUrl?: string | undefined;
  /** The organisation policy the plan was checked against and met, if one was given. */
  policyFile?: string | undefined;
}

/** Lines of `reprise diff` output shown before the rest is cut (GitHub caps a comment at 65,536 characters). */
const DIFF_MAX_LINES = 400;
/** Field-level changes shown outside the collapsed full diff. */
const FIELD_CHANGES_SHOWN = 40;
/** Preview diffs shown from the dry-run report, and lines of each. */
const PREVIEWS_SHOWN = 3;
const PREVIEW_MAX_LINES = 40;
/** Error samples shown from the dry-run report. */
const ERRORS_SHOWN = 3;

/**
 * The comment's first line: a hidden marker naming the plan, so a bot finds its own comment for
 * this plan among the pull request's comments and edits it instead of adding another.
 */
export function ciCommentMarker(planName: string): string {
  return `<!-- reprise:ci-comment plan=${planName} -->`;
}

export function renderCiComment(input: CiCommentInput): string {
  const sections = [
    ciCommentMarker(input.compiled.plan.name),
    header(input),
    statusLine(input),
    runbookSection(input),
    diffSection(input),
    dryRunSection(input),
    approvalsSection(input),
    footer(input),
  ];
  return `${sections.join('\n\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}

// ---------------------------------------------------------------------------------------------
// Header and status

function header({ compiled: c, planPath, policyFile }: CiCommentInput): string {
  const p = c.plan;
  const rows: Array<[string, string]> = [
    ['Plan file', code(planPath, true)],
    ['Owner', text(p.owner)],
    ['Author', `${text(p.author)} (may not approve this plan)`],
    ['Ticket', p.ticket ? text(p.ticket) : '(none)'],
    ['Reason', text(p.reason.trim())],
    ['Manifest hash', code(c.hash, true)],
    ['Run id', code(c.runId, true)],
    ['Compiler', `${text(c.manifest.compiler.name)} ${text(c.manifest.compiler.version)}`],
  ];
  if (policyFile !== undefined) rows.push(['Organisation policy', `${code(policyFile)}: met`]);
  return [`## reprise · \`${p.name}\` revision ${p.revision}`, table(['', ''], rows)].join('\n\n');
}

function statusLine(input: CiCommentInput): string {
  const parts: string[] = [];
  const b = input.base;
  if (b.kind === 'new') parts.push('🆕 new plan');
  else if (b.kind === 'diff') parts.push(b.diff.hashChanged ? `✏️ changed since ${code(b.ref)}` : `unchanged since ${code(b.ref)}`);
  else parts.push(`⚠️ no diff against ${code(b.ref)}`);
  const dr = input.dryRun;
  if (dr.kind === 'missing') parts.push('⏳ no dry-run yet');
  else if (dr.kind === 'unusable') parts.push('⚠️ dry-run report unusable');
  else if (dr.report.outcome === 'completed') parts.push(`✅ dry-run completed (${formatCount(dr.report.counts.selected)} items${dr.report.counts.failed ? `, ${formatCount(dr.report.counts.failed)} failed` : ''})`);
  else parts.push(`❌ dry-run ${dr.report.outcome}`);
  for (const s of [input.approvals.canary, input.approvals.full]) {
    const needed = stillNeeded(s);
    if (needed === 0) parts.push(`✅ ${s.stage} approved`);
    else if (s.stage === 'full' && !usableEvidence(input.canary)) parts.push(`⏳ full: after the canary (${s.min} approval${s.min === 1 ? '' : 's'})`);
    else parts.push(`⏳ ${s.stage}: ${needed} approval${needed === 1 ? '' : 's'} needed`);
  }
  return `**Status:** ${parts.join(' · ')}`;
}

// ---------------------------------------------------------------------------------------------
// Runbook summary

function runbookSection({ compiled: c }: CiCommentInput): string {
  const p = c.plan;
  const expect = p.selection?.expect ?? p.source?.expect ?? { min: 0, max: 0 };
  const window = p.selection?.window ?? p.source?.window ?? null;
  const ordering = p.selection?.ordering ?? p.source?.ordering ?? 'none';
  const r = p.rate;
  const rows: Array<[string, string]> = [];
  if (p.selection) rows.push(['Scope', `selection query on ${conn(p, p.selection.connection)}, key ${p.selection.key.map((k) => code(k, true)).join(', ')}`]);
  else if (p.source) rows.push(['Scope', `JSONL file ${code(p.source.jsonl, true)} (sha256 pinned), key ${code(p.source.key, true)}${p.source.timestamp ? `, timestamp ${code(p.source.timestamp, true)}` : ''}`]);
  rows.push(['Window', window ? `\`[${window.start}, ${window.end})\` (${formatDuration(Date.parse(window.end) - Date.parse(window.start))})` : 'none: every event in the file']);
  if (p.liveBoundary) rows.push(['Live boundary', `the live path owns everything from \`${p.liveBoundary.cutoff}\`${p.liveBoundary.watermark ? ' (its watermark is checked in the go/no-go)' : ' (no watermark query: confirm by hand)'}`]);
  rows.push(['Count guard', `${formatCount(expect.min)} to ${formatCount(expect.max)} items, counted before anything runs`]);
  rows.push(['Ordering', orderingText(ordering)]);
  rows.push(['Rate', `${formatCount(r.itemsPerSecond)} items/s for the whole run; headroom left to live: ${headroom(p)}`]);
  rows.push(['Workers', `${r.concurrency} item${r.concurrency === 1 ? '' : 's'} in flight per worker, at most ${r.maxConnections} connections per process, chunks of ${formatCount(r.chunkSize)}`]);
  rows.push(['Duration at the rate cap', `${approxDuration(expect.min / r.itemsPerSecond)} to ${approxDuration(expect.max / r.itemsPerSecond).replace(/^about /, '')}`]);
  rows.push(['Protect probes', r.protect.length ? `${r.protect.map((pr) => `${code(pr.name, true)} ≤ ${formatCount(pr.max)}`).join(', ')}, every ${formatDuration(r.checkEvery)}` : '**none**: the rate cap is the only guard']);
  rows.push(['Canary', `${formatCount(p.canary.size)} item${p.canary.size === 1 ? '' : 's'} (${p.canary.pick === 'first' ? 'first in key order' : 'sample seeded by the manifest hash'}); validation: ${p.canary.validate.length ? p.canary.validate.map((v) => code(v.name, true)).join(', ') : 'none'}`]);
  rows.push(['Abort', `more than ${pct(p.abort.maxErrorRate)} of the last ${formatCount(p.abort.errorWindow)} items failed, or ${formatCount(p.abort.maxConsecutiveErrors)} in a row; no progress for ${formatDuration(p.abort.stallAfter)}: ${p.abort.onStall}`]);
  rows.push(['Checkpoint', p.checkpoint.connection ? `schema \`reprise\` on ${conn(p, p.checkpoint.connection)}` : 'the `--state` store (`REPRISE_STATE`)']);
  rows.push(['Dedupe store', p.dedupe ? `${p.dedupe.store} on ${conn(p, p.dedupe.connection)}, namespace ${code(p.dedupe.namespace, true)}, claims kept ${formatDuration(p.dedupe.ttl)}` : 'none']);
  rows.push(['Approvals', `canary ${p.approvals.canary.min} · full ${p.approvals.full.min} · reverse ${p.approvals.reverse.min}`]);

  const out = ['### Runbook summary', table(['', ''], rows)];
  if (p.selection) out.push(details('Selection query', fence('sql', p.selection.query.trimEnd())));
  out.push('#### Side effects', sideEffectTable(p));
  const effects = p.sideEffects.map((e) => {
    const what = e.description ? ` — ${text(e.description.trim().replace(/([^.!?])$/, '$1.'))}` : ':';
    return `- ${code(e.name)}${what} ${effectSentence(p, e, c.runId)}`;
  });
  if (effects.length) out.push(details('What each effect does during the backfill', effects.join('\n')));
  out.push(`The full runbook (go/no-go and abort checklists, checkpoint schema, how to reverse each effect) is \`${c.plan.name}.r${c.plan.revision}.runbook.md\`, written by \`reprise compile\`.`);
  return out.join('\n\n');
}

function conn(p: Plan, name: string): string {
  const c = p.connections[name];
  return c ? `${code(name, true)} (env ${code(c.env, true)})` : code(name, true);
}

/** A share for humans, never rounded down to nothing: `< 0.1%` rather than `0.0%`. */
function share(ratio: number): string {
  return ratio > 0 && ratio < 0.001 ? '< 0.1%' : formatPercent(ratio);
}

function pct(x: number): string {
  return `${Number((x * 100).toPrecision(6))}%`;
}

// ---------------------------------------------------------------------------------------------
// Diff against the base branch

function diffSection({ base, planPath, compiled }: CiCommentInput): string {
  const head = `### Changes against ${code(base.ref)}`;
  if (base.kind === 'new') {
    return [head, `🆕 **New plan**: ${code(planPath)} does not exist at ${code(base.ref)}. Review all of it: the summary above and the full runbook.`].join('\n\n');
  }
  if (base.kind === 'unavailable') {
    return [head, `⚠️ Could not read ${code(base.ref)}: ${text(base.reason)} — ${text(base.hint)}.`].join('\n\n');
  }
  if (base.kind === 'invalid') {
    const problems = base.problems.map((p) => `- ${code(p.code)}: ${text(p.message)}`);
    return [head, `⚠️ The plan at ${code(base.ref)} does not compile, so there is no field-level diff:`, problems.join('\n')].join('\n\n');
  }
  const d = base.diff;
  const command = `reprise diff ${base.ref}:${planPath} ${planPath}`;
  const out = [head, diffSummary(d, base.ref, compiled.plan)];
  if (d.changes.length) out.push(fence('diff', clip(d.changes.map(formatChange).join('\n'), FIELD_CHANGES_SHOWN, 'the full diff below')));
  if (d.hashChanged) out.push(details(`Full diff: pinned files and the manifests (\`${command}\`)`, fence('diff', clip(formatDiff(d), DIFF_MAX_LINES, command))));
  return out.join('\n\n');
}

function diffSummary(d: PlanDiff, ref: string, plan: Plan): string {
  if (!d.hashChanged) return `No change: the plan compiles to the same manifest hash as at ${code(ref)}.`;
  const n = d.changes.length;
  const what: string[] = [];
  if (n) what.push(`**${n} plan field${n === 1 ? '' : 's'} changed**`);
  for (const f of d.files) {
    if (f.file === 'plan') continue;
    const name = f.file === 'compiler' ? 'the compiler version' : f.file === 'handler' ? 'the handler' : f.file === 'source' ? 'the JSONL source' : `the module of \`${f.file.slice('module:'.length)}\``;
    what.push(`**${name} ${f.op === '+' ? 'was added' : f.op === '-' ? 'was removed' : 'changed'}**`);
  }
  const lines = [`${what.length ? `${what.join(', ')}: the` : 'The'} manifest hash changed from ${code(d.a.hash)}, so approvals of that hash do not apply here.`];
  if (d.a.plan.name === plan.name && d.a.plan.revision === plan.revision) {
    lines.push(`> ⚠️ The revision is still ${plan.revision}: any change to a reviewed plan needs a new revision.`);
  } else if (d.a.plan.name === plan.name && d.a.plan.revision > plan.revision) {
    lines.push(`> ⚠️ The revision went down, from ${d.a.plan.revision} to ${plan.revision}.`);
  }
  return lines.join('\n\n');
}

/** At most `max` lines, then a line saying how many were cut and how to see them. */
function clip(s: string, max: number, command: string): string {
  const lines = s.trimEnd().split('\n');
  if (lines.length <= max) return lines.join('\n');
  return [...lines.slice(0, max), `… ${lines.length - max} more lines: run ${command}`].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Dry-run report

function dryRunSection({ dryRun, planPath, reportsDir, compiled }: CiCommentInput): string {
  const head = '### Dry-run';
  if (dryRun.kind === 'missing') {
    return [head, `⏳ No dry-run report yet (${code(dryRun.path)}). The canary is approved on it: run \`npx reprise dry-run ${planPath} --reports ${reportsDir}\` against the targets the canary will use.`].join('\n\n');
  }
  if (dryRun.kind === 'unusable') {
    return [head, `⚠️ **Do not approve on ${code(dryRun.path)}**: ${code(dryRun.code)} ${text(dryRun.message)}. Dry-run again and review the new report.`].join('\n\n');
  }
  const r = dryRun.report;
  const out = [head];
  const outcome = r.outcome === 'completed' ? '✅ **completed**' : `❌ **${r.outcome}**${r.abort ? ` (${text(r.abort.reason)}: ${text(r.abort.detail)})` : ''}: the canary cannot be approved on this report; dry-run again`;
  out.push(`${outcome} in ${formatElapsed(r.durationMs)}, started ${r.startedAt}. Report ${code(r.hash)} (${code(dryRun.path)}).`);
  const c = r.counts;
  out.push(table(['selected', 'processed', 'succeeded', 'failed', 'skipped (outside window)'], [[c.selected, c.processed, c.succeeded, c.failed, c.skippedOutsideWindow].map(formatCount)], 'r'));
  if (r.count) {
    const { value, expect } = r.count;
    const inside = value >= expect.min && value <= expect.max;
    out.push(`Count guard: counted **${formatCount(value)}** at ${r.count.countedAt}; the plan expects ${formatCount(expect.min)} to ${formatCount(expect.max)}: ${inside ? '✅ within bounds' : '❌ outside the bounds'}.`);
  }
  out.push(effectsByPolicy(r, compiled.plan));
  if (r.errors.total > 0) {
    const samples = r.errors.samples.slice(0, ERRORS_SHOWN);
    out.push(`**${formatCount(r.errors.total)}** item${r.errors.total === 1 ? '' : 's'} failed${c.processed ? ` (${share(r.errors.total / c.processed)} of processed)` : ''}${samples.length ? `; the first${samples.length === 1 ? '' : ` ${samples.length}`}:` : '.'}`);
    if (samples.length) out.push(table(['item', 'message'], samples.map((s) => [code(s.itemKey, true), text(truncate(s.message, 200))]), ['l', 'l']));
  } else {
    out.push('No item failed.');
  }
  const fps = Object.entries(r.fingerprints).filter((e): e is [string, NonNullable<(typeof e)[1]>] => e[1] !== undefined);
  if (fps.length) {
    out.push('Target fingerprints (the canary runs only against these servers):');
    out.push(table(['connection', 'identity'], fps.map(([name, f]) => [code(name, true), f.kind === 'postgres' ? `PostgreSQL system_identifier ${code(f.systemIdentifier, true)}, database ${code(f.database, true)}` : `Redis run_id ${code(f.runId, true)}`]), ['l', 'l']));
  }
  if (r.preview.length) {
    const shown = r.preview.slice(0, PREVIEWS_SHOWN).map((pv) => [
      `${code(pv.effect)} · item ${code(pv.itemKey)}${pv.method === 'estimated' ? ` (estimated: ${text(pv.note ?? 'the target refused the statement')})` : ''}`,
      pv.diff ? fence('diff', clip(pv.diff, PREVIEW_MAX_LINES, 'the JSON report')) : pv.before === null || pv.after === null ? `_Preview rows could not be read${pv.note ? `: ${text(pv.note)}` : ''}._` : '_No change._',
    ].join('\n\n'));
    out.push(details(`Sample preview diffs (${shown.length} of ${formatCount(r.preview.length)})`, shown.join('\n\n')));
  }
  return out.join('\n\n');
}

const POLICY_DOES: Record<'replay' | 'suppress' | 'dedupe', string> = {
  replay: 'applied',
  suppress: 'never applied: recorded as suppressed',
  dedupe: 'applied at most once per dedupe key',
};

function effectsByPolicy(r: Report, plan: Plan): string {
  if (r.effects.length === 0) return 'The plan declares no side effects.';
  const rows = r.effects.map((e) => {
    const decl = plan.sideEffects.find((x) => x.name === e.name);
    const key = e.policy === 'dedupe' && decl?.dedupeKey ? ` (${code(decl.dedupeKey, true)})` : '';
    return [code(e.name, true), e.kind, `**${e.policy}**`, formatCount(e.counts.captured), `${POLICY_DOES[e.policy]}${key}`];
  });
  const totals = (['replay', 'suppress', 'dedupe'] as const)
    .map((policy) => ({ policy, n: r.effects.filter((e) => e.policy === policy).reduce((s, e) => s + e.counts.captured, 0), effects: r.effects.filter((e) => e.policy === policy).length }))
    .filter((t) => t.effects > 0)
    .map((t) => `${t.policy} ${formatCount(t.n)}`);
  return [
    'Effect calls the handler made, captured and not applied, by backfill policy:',
    table(['effect', 'kind', 'policy', 'calls', 'in the canary and full run'], rows, ['l', 'l', 'l', 'r', 'l']),
    `Calls by policy: ${totals.join(' · ')}.`,
  ].join('\n\n');
}

// ---------------------------------------------------------------------------------------------
// Approvals

function stillNeeded(s: StageApprovals): number {
  return Math.max(0, s.min - s.accepted.length);
}

function usableEvidence(r: ReportLookup): Report | undefined {
  return r.kind === 'found' && r.report.outcome === 'completed' ? r.report : undefined;
}

function shortHash(h: string): string {
  return h.length > 19 ? `${h.slice(0, 19)}…` : h;
}

function approvalsSection(input: CiCommentInput): string {
  const { canary, full } = input.approvals;
  const dry = usableEvidence(input.dryRun);
  const can = usableEvidence(input.canary);
  const out = ['### Approvals'];
  const binds = (s: StageApprovals): string => {
    if (s.stage === 'canary') return dry ? `the manifest and the dry-run report ${code(shortHash(dry.hash), true)}` : 'the manifest and the dry-run report (none yet)';
    return can ? `the manifest and the canary report ${code(shortHash(can.hash), true)}` : 'the manifest and the canary report (after the canary)';
  };
  const valid = (s: StageApprovals): string => (s.trustChecked ? String(s.accepted.length) : 'not checked');
  out.push(table(['stage', 'each approval binds', 'required', 'valid', 'still needed'], [canary, full].map((s) => [code(s.stage, true), binds(s), String(s.min), valid(s), stillNeeded(s) ? `**${stillNeeded(s)}**` : '✅ 0']), ['l', 'l', 'r', 'r', 'r']));
  if (!canary.trustChecked) {
    out.push('> ⚠️ Signatures were not checked: this job has no trust file (`--trust` / `REPRISE_TRUST`), so no approval counts here. The pipeline checks every approval against its trust file before a stage runs.');
  }
  const author = text(input.compiled.plan.author);
  for (const s of [canary, full]) out.push(stageBlock(input, s, s.stage === 'canary' ? input.dryRun : input.canary, author));
  if (stillNeeded(canary) + stillNeeded(full) > 0) {
    out.push('In these commands `REPRISE_KEY` is your ed25519 signing key (your SSH key, e.g. `~/.ssh/id_ed25519`, or one from `reprise keygen`) and `REPRISE_APPROVER` your principal as the trust file lists it.');
  }
  const files = approvalFiles(canary, full);
  if (files) out.push(files);
  return out.join('\n\n');
}

function stageBlock(input: CiCommentInput, s: StageApprovals, evidence: ReportLookup, author: string): string {
  const needed = stillNeeded(s);
  const plan = input.planPath;
  const reportName = `${input.compiled.runId}.${s.stage === 'canary' ? 'dry-run' : 'canary'}.report.json`;
  const reportPath = joinPath(input.reportsDir, reportName);
  const command = `npx reprise approve ${plan} --stage ${s.stage} --key "$REPRISE_KEY" --approver "$REPRISE_APPROVER" --evidence ${reportPath}${input.approvalsDir === 'approvals' ? '' : ` --out ${input.approvalsDir}`}`;
  const file = joinPath(input.approvalsDir, `${input.compiled.plan.name}.r${input.compiled.plan.revision}.${s.stage}.<you>.approval.json`);
  const usable = usableEvidence(evidence);
  if (needed === 0) {
    const who = s.accepted.map((a) => text(a.approver)).join(', ');
    const run = `npx reprise run ${plan} --stage ${s.stage}`;
    return `**\`${s.stage}\`** is approved by ${who}${s.evidenceChecked ? '' : ' (the report they cite was not compared: it is not in this job)'}. The pipeline runs it: \`${run}\`.`;
  }
  const who = `${needed} more trusted approver${needed === 1 ? '' : 's'} (not ${author}, the author)`;
  const commit = s.stage === 'canary' ? `and commit ${code(file)} to this branch.` : `and commit ${code(file)} through a pull request (the canary has run from the default branch).`;
  const sign = [fence('sh', command), commit];
  if (s.stage === 'canary') {
    if (usable) {
      const fetch = input.artifactsUrl ? `, saved as ${code(reportPath)} from the [CI artifacts](${input.artifactsUrl})` : ` (${code(reportPath)}, in this pipeline's artifacts)`;
      return [`**\`canary\`** needs ${who}. Read the runbook and the dry-run report${fetch}, then sign:`, ...sign].join('\n\n');
    }
    if (evidence.kind === 'missing') return [`**\`canary\`** needs ${who}, once the dry-run report exists. Then sign:`, ...sign].join('\n\n');
    return `**\`canary\`** cannot be approved yet: the dry-run report is not usable (see above). Dry-run again, then sign with \`--evidence\` pointing at the new report.`;
  }
  if (usable) {
    const fetch = input.artifactsUrl ? `, saved as ${code(reportPath)} from the [CI artifacts](${input.artifactsUrl})` : ` (${code(reportPath)})`;
    return [`**\`full\`** needs ${who}. Read the canary report${fetch}, then sign:`, ...sign].join('\n\n');
  }
  if (evidence.kind === 'found' || evidence.kind === 'unusable') {
    return `**\`full\`** cannot be approved on the canary report in ${code(evidence.path)}: ${evidence.kind === 'unusable' ? `${code(evidence.code)} ${text(evidence.message)}` : `the canary ${evidence.report.outcome}`}. A canary that did not complete is never the evidence for full.`;
  }
  return [`**\`full\`** needs ${who} after the canary: once \`npx reprise run ${plan} --stage canary\` has completed, read its report and sign:`, ...sign].join('\n\n');
}

function approvalFiles(...stages: StageApprovals[]): string | undefined {
  const lines: string[] = [];
  for (const s of stages) {
    for (const a of s.accepted) lines.push(`- ✅ ${code(a.file)} (${s.stage}): ${text(a.approver)}, key ${code(a.key)}, expires ${text(a.expiresAt)}`);
    for (const r of s.refused) lines.push(`- ❌ ${code(r.file)} (${s.stage})${r.approver ? `: ${text(r.approver)}` : ''} — ${code(r.code)} ${text(r.message)}`);
    for (const u of s.unverified) lines.push(`- ❔ ${code(u.file)} (${s.stage})${u.approver ? `: claims ${text(u.approver)}` : ''}, not verified`);
  }
  if (lines.length === 0) return undefined;
  return ['Approval files of this revision:', lines.join('\n')].join('\n\n');
}

// ---------------------------------------------------------------------------------------------
// Footer

function footer(input: CiCommentInput): string {
  const artifacts = input.artifactsUrl ? ` Manifest, runbook and reports: [CI artifacts](${input.artifactsUrl}).` : '';
  return `<sub>Posted by \`reprise ci-comment\` (${text(input.compiled.manifest.compiler.version)}) and updated in place on every push.${artifacts}</sub>`;
}

// ---------------------------------------------------------------------------------------------
// Markdown helpers

function details(summary: string, body: string): string {
  return `<details>\n<summary>${summary}</summary>\n\n${body}\n\n</details>`;
}

function table(head: string[], rows: string[][], align: Array<'l' | 'r'> | 'r' = []): string {
  const al = (i: number): 'l' | 'r' => (align === 'r' ? 'r' : (align[i] ?? 'l'));
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map((_, i) => (al(i) === 'r' ? '---:' : '---'))), ...rows.map(line)].join('\n');
}

/** Joins a folder and a file name with `/`, as a pipeline writes paths, whatever the OS. @internal */
export function joinPath(dir: string, name: string): string {
  return `${dir.replace(/[\\/]+$/, '') || '.'}/${name}`;
}
