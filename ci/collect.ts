/**
 * Everything the pull-request comment shows, read from disk and git: the plan compiled, its base
 * revision, this run's dry-run and canary reports from `--reports`, and the approval files of
 * this revision judged by the executor's own verifier (ci/comment.ts renders the result).
 */
import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { compileSource, type Compiled } from '../compiler/compile.js';
import { coerceError, ExitCode, RepriseError } from '../compiler/errors.js';
import type { Policy } from '../compiler/policy.js';
import { fsPlanSource } from '../compiler/source.js';
import type { AllowedSigners } from '../executor/approvals/allowed-signers.js';
import { DEFAULT_APPROVALS_DIR, loadTrustFile, readApprovalSources } from '../executor/approvals/load.js';
import { parseApprovalFile } from '../executor/approvals/statement.js';
import { verifyApprovals, type ApprovalSource } from '../executor/approvals/verify.js';
import { parseReport } from '../executor/reports/report.js';
import type { ReportStage } from '../schema/report.types.js';
import { checkBaseRef, defaultBaseRef, readBaseRevision, type BaseRevision } from './base.js';
import { joinPath, type CiCommentInput, type ReportLookup, type StageApprovals } from './comment.js';

/** Default folder of stage reports (`--reports`), as `reprise dry-run` and `reprise run` use. */
export const DEFAULT_REPORTS_DIR = 'reports';

export interface CollectOptions {
  /** The plan file, as the pipeline names it. */
  plan: string;
  /** Git revision to diff against. @defaultValue defaultBaseRef(env) */
  base?: string | undefined;
  /** @defaultValue 'reports' */
  reportsDir?: string | undefined;
  /** @defaultValue 'approvals' */
  approvalsDir?: string | undefined;
  /** Trust file to check approvals against. @defaultValue env REPRISE_TRUST; none: approvals are listed unverified */
  trust?: string | undefined;
  /** The CI run's page, where reviewers download the reports; must be an http(s) URL. */
  artifactsUrl?: string | undefined;
  /** Folder the paths above are relative to (and the git working tree). @defaultValue process.cwd() */
  cwd?: string;
  /** @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** When approvals are judged (expiry, key validity). @defaultValue new Date() */
  now?: Date;
  /** The organisation policy the plan is held to: a violation refuses the comment, as `compile` refuses. */
  policy?: Policy | undefined;
}

export async function collectCiComment(opts: CollectOptions): Promise<CiCommentInput> {
  const env = opts.env ?? process.env;
  const reportsDir = opts.reportsDir ?? DEFAULT_REPORTS_DIR;
  const approvalsDir = opts.approvalsDir ?? DEFAULT_APPROVALS_DIR;
  const artifactsUrl = opts.artifactsUrl === undefined ? undefined : checkArtifactsUrl(opts.artifactsUrl);
  const ref = checkBaseRef(opts.base ?? defaultBaseRef(env));
  const trustPath = opts.trust ?? (env.REPRISE_TRUST || undefined);
  const cwd = opts.cwd ?? process.cwd();
  const trust = trustPath === undefined ? undefined : loadTrustFile(resolve(cwd, trustPath));
  // Read from cwd, named as given: the comment never shows a path of the machine that rendered it.
  const compiled = await compileSource(fsPlanSource(resolve(cwd, opts.plan), opts.plan), { policy: opts.policy });
  const base: BaseRevision = await readBaseRevision(ref, opts.plan, compiled, cwd);
  const dryRun = readStageReport(reportsDir, compiled, 'dry-run', cwd);
  const canary = readStageReport(reportsDir, compiled, 'canary', cwd);
  const approvalFiles = approvalsOfRevision(readApprovalSources(resolve(cwd, approvalsDir)), compiled).map((a) => ({ ...a, source: { ...a.source, file: displayPath(cwd, approvalsDir, a.source.file) } }));
  const now = opts.now ?? new Date();
  const judge = (stage: 'canary' | 'full', evidence: ReportLookup): StageApprovals =>
    judgeStage({ stage, compiled, evidence, files: approvalFiles.filter((a) => a.stage === stage || (a.stage === undefined && stage === 'canary')), trust, now });
  return {
    compiled,
    planPath: opts.plan,
    base,
    reportsDir,
    approvalsDir,
    dryRun,
    canary,
    approvals: { canary: judge('canary', dryRun), full: judge('full', canary) },
    artifactsUrl,
    policyFile: opts.policy?.file,
  };
}

/**
 * `<reports>/<run>.<stage>.report.json`, its hash checked, and only if it is this run's: a
 * report of another run or manifest, or one edited after it was written, is `unusable`.
 */
export function readStageReport(reportsDir: string, compiled: Pick<Compiled, 'runId' | 'hash'>, stage: Exclude<ReportStage, 'reverse' | 'full'>, cwd: string = process.cwd()): ReportLookup {
  const path = joinPath(reportsDir, `${compiled.runId}.${stage}.report.json`);
  let text: string;
  try {
    text = readFileSync(resolve(cwd, path), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing', path };
    return { kind: 'unusable', path, code: 'REPORT_UNREADABLE', message: `cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  try {
    const report = parseReport(text, path);
    if (report.stage !== stage || report.runId !== compiled.runId || report.manifest !== compiled.hash) {
      return { kind: 'unusable', path, code: 'EVIDENCE_NOT_THIS_RUN', message: `it is a ${report.stage} report of run ${report.runId} (manifest ${report.manifest}), not the ${stage} of ${compiled.runId}` };
    }
    return { kind: 'found', path, report };
  } catch (e) {
    const err = coerceError(e);
    return { kind: 'unusable', path, code: err.code, message: err.message.startsWith(`${path}`) ? err.message.slice(path.length).replace(/^[:\s]+/, '') : err.message };
  }
}

interface RevisionApproval {
  source: ApprovalSource;
  /** The stage the file claims; undefined when it cannot be parsed (then listed, refused, under canary). */
  stage: string | undefined;
  /** The approver the file names; null when it cannot be parsed. */
  approver: string | null;
}

/**
 * The approval files that concern this plan revision: those whose statement names its plan and
 * revision (whatever their manifest, so an approval of an earlier hash shows up as refused), and
 * unreadable files named like one. Approvals of other plans and older revisions are left out.
 */
function approvalsOfRevision(sources: ApprovalSource[], compiled: Pick<Compiled, 'plan'>): RevisionApproval[] {
  const { name, revision } = compiled.plan;
  const out: RevisionApproval[] = [];
  for (const source of sources) {
    try {
      const st = parseApprovalFile(source.bytes, source.file).statement;
      if (st.plan === name && st.revision === revision) out.push({ source, stage: st.stage, approver: st.approver });
    } catch {
      if (basename(source.file).startsWith(`${name}.r${revision}.`)) out.push({ source, stage: undefined, approver: null });
    }
  }
  return out;
}

function judgeStage(input: { stage: 'canary' | 'full'; compiled: Compiled; evidence: ReportLookup; files: RevisionApproval[]; trust: AllowedSigners | undefined; now: Date }): StageApprovals {
  const { stage, compiled, evidence, files, trust } = input;
  const min = Math.max(1, compiled.plan.approvals[stage].min);
  const report = evidence.kind === 'found' && evidence.report.outcome === 'completed' ? evidence.report : undefined;
  const base = { stage, min, trustChecked: trust !== undefined, evidenceChecked: report !== undefined };
  if (!trust) return { ...base, accepted: [], refused: [], unverified: files.map((f) => ({ file: f.source.file, approver: f.approver })) };
  const field = stage === 'canary' ? 'dryRunReport' : 'canaryReport';
  const result = verifyApprovals({
    manifestHash: compiled.hash,
    plan: compiled.plan.name,
    revision: compiled.plan.revision,
    author: compiled.plan.author,
    stage,
    min,
    expectedEvidence: report ? { [field]: report.hash } : {},
    approvals: files.map((f) => f.source),
    trust,
    now: input.now,
  });
  return {
    ...base,
    accepted: result.accepted.map((a) => ({ file: a.file, approver: a.approver, key: a.keyFingerprint, expiresAt: a.statement.expiresAt })),
    refused: result.rejected.map((r) => ({ file: r.file, approver: r.approver ?? null, code: r.code, message: r.message })),
    unverified: [],
  };
}

/** An approval file read from `resolve(cwd, dir)`, named under `dir` as given. */
function displayPath(cwd: string, dir: string, file: string): string {
  const root = resolve(cwd, dir);
  return file === root ? dir : file.startsWith(`${root}/`) || file.startsWith(`${root}\\`) ? joinPath(dir, file.slice(root.length + 1)) : file;
}

/** Only a plain http(s) URL goes into the comment's links. */
function checkArtifactsUrl(url: string): string {
  if (!/^https?:\/\/[^\s()<>\[\]"'`]+$/.test(url)) {
    throw new RepriseError('USAGE', `--artifacts-url ${JSON.stringify(url)} is not an http(s) URL`, {
      exit: ExitCode.invalidInput,
      hint: 'e.g. --artifacts-url "$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID"',
    });
  }
  return url;
}
