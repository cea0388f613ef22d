/**
 * The go/no-go preflight of `reprise run --stage canary|full`: every check of the runbook's
 * go/no-go list, run against this environment right before processing, printed as one table,
 * and refusing the stage (exit 3) when any row is no-go. `runStage` calls it through its
 * `preflight` hook after the count guard and the target fingerprints (see run.ts).
 *
 *   approvals       `approvals.<stage>.min` valid approvals of this manifest whose evidence is
 *                   this run's report: the latest dry-run report in the state store (else the
 *                   report file `<reportsDir>/<run>.dry-run.report.json`) for canary; the canary
 *                   report this run recorded, outcome `completed`, for full. None used by another run.
 *   count guard     the count is inside `expect` (runStage already refused otherwise)
 *   count drift     the count now against the dry-run report's (see countDrift)
 *   fingerprints    every target is the one the evidence report recorded
 *   dedupe store    reachable (ping)
 *   live watermark  the live path started at or before `liveBoundary.cutoff`
 *   kill switch     the state store answers and the run's control flag is `run`
 *   protect probes  filled by the throttle (the `probes` option), else n/a
 *
 * Every row is computed, the whole table printed, and only then the first no-go row thrown as
 * its own `error[CODE]`. When every row is go, the accepted approvals are recorded as used by
 * this run before any item is processed. See docs/approvals.md ("The go/no-go table").
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, RepriseError, coerceError } from '../../compiler/errors.js';
import { canonicalJson } from '../../compiler/manifest.js';
import type { Report } from '../../schema/report.types.js';
import { outcomeDetailOf, parseReport } from '../approvals/evidence.js';
import { loadTrustFile, readApprovalSources, resolveTrustPath } from '../approvals/load.js';
import { approvalIdsOf, assertApproved, verifyApprovals, type VerifyResult } from '../approvals/verify.js';
import type { AllowedSigners } from '../approvals/allowed-signers.js';
import { actor } from '../store/store.js';
import type { Fingerprint } from '../targets.js';
import { reportFingerprints } from './dry-run.js';
import type { OpenedRun } from './open.js';
import type { PreflightContext } from './run.js';

/** Where the table goes; the CLI's Output fits. Human lines through `info`, one object per row through `record` with `json`. */
export interface PreflightOutput {
  readonly json: boolean;
  info(line: string): void;
  record(obj: Record<string, unknown>): void;
}

/** One row of the go/no-go table. */
export interface PreflightRow {
  check: string;
  ok: boolean;
  /** `n/a` rows are ok: nothing to check (no dedupe store, no watermark query, no probe hook). */
  status: 'go' | 'no-go' | 'n/a';
  detail: string;
  /** The refusal code of a no-go row. */
  code?: string;
  hint?: string;
  /** Extra fields for --json (approvals: one entry per file). */
  extra?: Record<string, unknown>;
}

/** What a check returns; the probes hook returns one too. */
export type PreflightCheck = Omit<PreflightRow, 'check'>;

export interface PreflightOptions {
  /** Approval files: a folder of `*.approval.json`, or one file. @defaultValue 'approvals' */
  approvalsDir?: string;
  /** `--trust`; without it REPRISE_TRUST; with neither, TRUST_MISSING (exit 2). */
  trustPath?: string;
  /** Where `<run>.dry-run.report.json` is looked for when the state store has no dry-run report. @defaultValue 'reports' */
  reportsDir?: string;
  env?: NodeJS.ProcessEnv;
  /** The clock approvals are judged by. @defaultValue () => new Date() */
  now?: () => Date;
  /** Where the table is printed. @defaultValue nowhere */
  out?: PreflightOutput;
  /**
   * Largest drift of the count from the dry-run's, as a fraction of the dry-run count (rounded
   * down to whole items). @defaultValue DEFAULT_MAX_COUNT_DRIFT (0.01)
   */
  maxCountDrift?: number;
  /** The "protect probes" row: reads the plan's protect probes once (the throttle provides it). */
  probes?: (run: OpenedRun) => Promise<PreflightCheck>;
}

/** 1%: a historical window should not move between the dry-run and the run. */
export const DEFAULT_MAX_COUNT_DRIFT = 0.01;

type StageReport = { hash: string; body: Report; source: string };
type Lookup = { report?: StageReport; problem?: { code: string; message: string; hint: string } };

const refusal = (code: string, message: string, hint: string): { code: string; message: string; hint: string } => ({ code, message, hint });

/**
 * Builds the `preflight` hook for runStage. Resolves and reads the trust file at once, so a
 * missing or unreadable one fails before anything is opened (exit 2).
 */
export function createPreflight(opts: PreflightOptions = {}): (ctx: PreflightContext) => Promise<void> {
  const env = opts.env ?? process.env;
  const trustPath = resolveTrustPath(opts.trustPath, env);
  const trust = loadTrustFile(trustPath);
  return async (ctx) => {
    if (ctx.stage === 'dry-run') return;
    await preflight(ctx, opts, trust);
  };
}

async function preflight(ctx: PreflightContext, opts: PreflightOptions, trust: AllowedSigners): Promise<void> {
  const { run, stage } = ctx;
  const { store, runId } = run;
  const reportsDir = opts.reportsDir ?? 'reports';
  const dryRun = await dryRunReport(run, reportsDir);
  const canary = stage === 'full' ? await canaryReport(ctx) : undefined;

  const approvals = await approvalsRow(ctx, opts, trust, dryRun, canary);
  const rows: PreflightRow[] = [
    { check: 'approvals', ...approvals.row },
    { check: 'count guard', ...countGuard(ctx) },
    { check: 'count drift', ...countDrift(ctx, dryRun.report ?? canary?.report, opts.maxCountDrift ?? DEFAULT_MAX_COUNT_DRIFT) },
    { check: 'fingerprints', ...fingerprintsRow(ctx.fingerprints, stage === 'full' ? (canary?.latest ?? dryRun.report) : dryRun.report) },
    { check: 'dedupe store', ...(await guarded('DEDUPE_STORE_UNREACHABLE', () => dedupeRow(run))) },
    { check: 'live watermark', ...(await guarded('LIVE_WATERMARK_FAILED', () => watermarkRow(run))) },
    { check: 'kill switch', ...(await guarded('STATE_UNAVAILABLE', () => killSwitchRow(run))) },
    { check: 'protect probes', ...(await guarded('PROBE_FAILED', () => probesRow(run, opts))) },
  ];
  print(opts.out, runId, stage, rows, approvals.result);

  const nogo = rows.filter((r) => !r.ok);
  if (nogo.length) {
    const first = nogo[0]!;
    await store.recordEvent(runId, actor(), 'refused', { stage, code: first.code, nogo: nogo.map((r) => ({ check: r.check, code: r.code, detail: r.detail })) }).catch(() => undefined);
    const also = nogo.length > 1 ? ` (also no-go: ${nogo.slice(1).map((r) => `${r.check} ${r.code}`).join(', ')})` : '';
    throw new RepriseError(first.code ?? 'PREFLIGHT_NO_GO', `go/no-go: ${first.check}: ${first.detail}${also}`, {
      exit: ExitCode.refused,
      hint: first.hint ?? 'see the go/no-go table above',
      details: { stage, rows: rows.map(({ extra: _x, ...r }) => r) },
    });
  }

  // Every row is go: record the approvals as used by this run before any item is processed.
  const accepted = approvals.result?.accepted ?? [];
  for (const a of accepted) {
    const usedBy = await store.recordApprovalUse(a.approvalId, runId, stage, a.approver);
    if (usedBy !== runId) {
      throw new RepriseError('APPROVAL_ALREADY_USED', `${a.file}: already used by run ${usedBy}`, { exit: ExitCode.refused, hint: 'each approval allows one run; ask for a new approval' });
    }
  }
  await store.recordEvent(runId, actor(), 'preflight', {
    stage,
    evidence: approvals.evidence ?? null,
    approvals: accepted.map((a) => ({ id: a.approvalId, approver: a.approver, key: a.keyFingerprint, file: a.file })),
    rows: rows.map((r) => ({ check: r.check, status: r.status, detail: r.detail })),
  });
}

/** Runs a check; anything it throws becomes a no-go row with the error's code (or `fallback`). */
async function guarded(fallback: string, fn: () => Promise<PreflightCheck>): Promise<PreflightCheck> {
  try {
    return await fn();
  } catch (e) {
    const err = e instanceof RepriseError ? e : undefined;
    const message = (e as Error)?.message ?? String(e);
    return { ok: false, status: 'no-go', code: err && err.code !== 'INTERNAL' ? err.code : fallback, detail: message, hint: err?.hint };
  }
}

// ---- evidence ---------------------------------------------------------------------------------

/**
 * This run's dry-run report: the latest the state store recorded for the run, else the report
 * file `<reportsDir>/<run>.dry-run.report.json` (CI dry-ran against another state store), checked
 * like `readReportFile` (its content hash) and required to be this run's, of this manifest, completed.
 */
async function dryRunReport(run: OpenedRun, reportsDir: string): Promise<Lookup> {
  const stored = await run.store.latestReport<Report>(run.runId, 'dry-run');
  if (stored) return { report: { hash: stored.hash, body: stored.body, source: 'state store' } };
  const path = join(reportsDir, `${run.runId}.dry-run.report.json`);
  if (!existsSync(path)) return {};
  try {
    const bytes = readFileSync(path);
    const ev = parseReport(bytes, path);
    if (ev.stage !== 'dry-run' || ev.runId !== run.runId || ev.manifest !== run.manifest.hash) {
      return {
        problem: refusal('EVIDENCE_NOT_THIS_RUN', `${path} is a ${ev.stage} report of run ${ev.runId} (manifest ${ev.manifest}), not the dry-run of ${run.runId} (${run.manifest.hash})`, 'dry-run this plan (reprise dry-run) and have the reviewers approve its report'),
      };
    }
    if (ev.outcome !== 'completed') {
      return { problem: refusal('EVIDENCE_NOT_COMPLETED', `${path}: the dry-run did not complete (outcome ${ev.outcome ?? 'missing'})`, 'dry-run the plan again and review the new report') };
    }
    return { report: { hash: ev.hash, body: JSON.parse(bytes.toString('utf8')) as Report, source: path } };
  } catch (e) {
    if (e instanceof RepriseError) return { problem: refusal(e.code, e.message, e.hint ?? 'use the report as reprise wrote it') };
    return { problem: refusal('REPORT_INVALID', `cannot read ${path}: ${(e as Error).message}`, 'pass the report as reprise wrote it') };
  }
}

/** The canary report this run recorded: the evidence for full only when its outcome is `completed`. */
async function canaryReport(ctx: PreflightContext): Promise<Lookup & { latest?: StageReport }> {
  const stored = await ctx.run.store.latestReport<Report>(ctx.run.runId, 'canary');
  if (!stored) {
    return { problem: refusal('CANARY_NOT_COMPLETED', `run ${ctx.run.runId} has no canary report: the full run follows a completed canary`, `run reprise run <plan> --stage canary first; reviewers approve full on its report`) };
  }
  const latest: StageReport = { hash: stored.hash, body: stored.body, source: 'state store' };
  const outcome = stored.body.outcome;
  if (outcome !== 'completed') {
    const why = outcomeDetailOf(stored.body as unknown as Record<string, unknown>);
    const failed = outcome === 'validation-failed';
    return {
      latest,
      problem: refusal(
        failed ? 'CANARY_VALIDATION_FAILED' : 'CANARY_NOT_COMPLETED',
        `the canary of run ${ctx.run.runId} ${failed ? 'failed validation' : `did not complete (outcome ${outcome})`}${why ? `: ${why}` : ''}; its report ${short(stored.hash)} cannot be the evidence for full`,
        failed
          ? 'a failed canary never leads to full: find the cause, reverse what it applied if needed (reprise reverse), and start again with a new plan revision'
          : 'run the canary again until it completes (reprise run <plan> --stage canary), then have the reviewers approve full on its report',
      ),
    };
  }
  if (ctx.runRow.stage === 'canary' && ctx.runRow.status !== 'completed') {
    return { latest, problem: refusal('CANARY_NOT_COMPLETED', `run ${ctx.run.runId} is at stage canary with status ${ctx.runRow.status}`, 'let the canary complete first') };
  }
  return { report: latest, latest };
}

// ---- rows -------------------------------------------------------------------------------------

async function approvalsRow(
  ctx: PreflightContext,
  opts: PreflightOptions,
  trust: AllowedSigners,
  dryRun: Lookup,
  canary: (Lookup & { latest?: StageReport }) | undefined,
): Promise<{ row: PreflightCheck; result?: VerifyResult; evidence?: { stage: string; hash: string; source: string } }> {
  const { run, stage } = ctx;
  if (stage === 'dry-run') return { row: { ok: true, status: 'n/a', detail: 'the dry-run needs no approval' } };
  const lookup = stage === 'canary' ? dryRun : canary!;
  // A report that exists but cannot be the evidence (not this run's, tampered, a failed canary) is the refusal.
  if (lookup.problem) return { row: { ok: false, status: 'no-go', ...lookup.problem, detail: lookup.problem.message } };

  const evidenceStage = stage === 'canary' ? 'dry-run' : 'canary';
  const evidence = lookup.report ? { stage: evidenceStage, hash: lookup.report.hash, source: lookup.report.source } : undefined;
  const sources = readApprovalSources(opts.approvalsDir ?? 'approvals');
  const uses = await run.store.approvalUses(approvalIdsOf(sources));
  const result = verifyApprovals({
    manifestHash: run.manifest.hash,
    plan: run.plan.name,
    revision: run.plan.revision,
    author: run.plan.author,
    stage,
    min: run.plan.approvals[stage].min,
    expectedEvidence: stage === 'canary' ? { dryRunReport: lookup.report?.hash } : { canaryReport: lookup.report?.hash },
    approvals: sources,
    trust,
    now: (opts.now ?? (() => new Date()))(),
    runId: run.runId,
    priorUses: new Map([...uses].map(([id, u]) => [id, u.runId])),
    usedAt: new Map([...uses].filter(([, u]) => u.runId === run.runId && u.stage === stage).map(([id, u]) => [id, u.usedAt])),
  });
  const extra = {
    evidence: evidence ?? null,
    min: result.min,
    approvals: [
      ...result.accepted.map((a) => ({ file: a.file, status: 'accepted', approver: a.approver, approvalId: a.approvalId, key: a.keyFingerprint })),
      ...result.rejected.map((r) => ({ file: r.file, status: 'refused', approver: r.approver ?? null, code: r.code, message: r.message })),
    ],
  };
  const on = evidence ? ` on ${evidenceStage} report ${short(evidence.hash)} (${evidence.source === 'state store' ? 'state store' : `file ${evidence.source}; the state store has none`})` : '';
  if (result.ok) {
    return {
      result,
      evidence,
      row: { ok: true, status: 'go', detail: `${result.accepted.length} valid, ${result.min} required: ${result.accepted.map((a) => a.approver).join(', ')}${on}`, extra },
    };
  }
  try {
    assertApproved(result);
  } catch (e) {
    const err = coerceError(e);
    return { result, evidence, row: { ok: false, status: 'no-go', code: err.code, detail: `${err.message}${evidence ? ` (evidence:${on.replace(/^ on/, '')})` : ''}`, hint: err.hint, extra } };
  }
  return { result, evidence, row: { ok: false, status: 'no-go', code: 'APPROVALS_INSUFFICIENT', detail: 'not approved', extra } };
}

function countGuard(ctx: PreflightContext): PreflightCheck {
  const expect = (ctx.run.plan.selection ?? ctx.run.plan.source)!.expect;
  const ok = ctx.count >= expect.min && ctx.count <= expect.max;
  return ok
    ? { ok, status: 'go', detail: `${ctx.count} items, expected ${expect.min}..${expect.max}` }
    : { ok, status: 'no-go', code: 'COUNT_GUARD', detail: `${ctx.count} items, outside the expected ${expect.min}..${expect.max}`, hint: 'check the window and the query; if the count is right, change expect in a new plan revision' };
}

/**
 * The count now (C) against the baseline report's count (D, the dry-run's; for full without any
 * dry-run report, the canary's). Allowed: `tol = floor(D × maxCountDrift)` items either way, and
 * additionally a shrink by up to P = items this run already processed successfully (a selection
 * such as `where not migrated` loses the items the run fixed). No-go (COUNT_DRIFT) when
 * C > D + tol, or C + P < D − tol.
 */
function countDrift(ctx: PreflightContext, baseline: StageReport | undefined, maxDrift: number): PreflightCheck {
  if (!baseline) {
    return { ok: false, status: 'no-go', code: 'EVIDENCE_MISSING', detail: 'no dry-run report of this run to compare the count with', hint: 'run reprise dry-run first (with the same state store, or keep its report in --reports)' };
  }
  const d = baseline.body.count?.value;
  if (typeof d !== 'number') return { ok: false, status: 'no-go', code: 'EVIDENCE_MISSING', detail: `the ${baseline.body.stage} report ${short(baseline.hash)} records no count`, hint: 'dry-run the plan again' };
  const c = ctx.count;
  const p = ctx.runRow.items_done;
  const tol = Math.floor(d * maxDrift);
  const delta = c - d;
  const pct = d === 0 ? (c === 0 ? 0 : 100) : (100 * delta) / d;
  const what = `${c} items now, ${d} at the ${baseline.body.stage} (${delta >= 0 ? '+' : ''}${delta}, ${pct >= 0 ? '+' : ''}${pct.toFixed(2)}%); allowed ±${tol} (${(maxDrift * 100).toFixed(2)}%)${p ? `, plus a shrink of up to ${p} items this run already processed` : ''}`;
  if (c > d + tol || c + p < d - tol) {
    return {
      ok: false,
      status: 'no-go',
      code: 'COUNT_DRIFT',
      detail: what,
      hint: 'the selection changed since the dry-run: find out why; if the new count is right, dry-run again and have the reviewers approve the new report',
    };
  }
  return { ok: true, status: 'go', detail: what };
}

/** Each target against the fingerprint the evidence report recorded for the same connection. */
function fingerprintsRow(now: Record<string, Fingerprint>, baseline: StageReport | undefined): PreflightCheck {
  if (!baseline) {
    return { ok: false, status: 'no-go', code: 'EVIDENCE_MISSING', detail: 'no report of this run recorded the targets to compare with', hint: 'run reprise dry-run first' };
  }
  const current = reportFingerprints(now);
  const recorded = baseline.body.fingerprints ?? {};
  const mismatches: string[] = [];
  const names = [...new Set([...Object.keys(current), ...Object.keys(recorded)])].sort();
  for (const name of names) {
    const a = recorded[name];
    const b = current[name];
    if (canonicalJson(a ?? null) !== canonicalJson(b ?? null)) {
      mismatches.push(`connection \`${name}\`: the ${baseline.body.stage} report recorded ${describeFingerprint(a)}, this environment is ${describeFingerprint(b)}`);
    }
  }
  if (mismatches.length) {
    return {
      ok: false,
      status: 'no-go',
      code: 'FINGERPRINT_MISMATCH',
      detail: mismatches.join('; '),
      hint: 'an approval earned on one environment cannot run against another: point the connection variables at the targets the dry-run used, or dry-run against these targets and have that report approved',
    };
  }
  return { ok: true, status: 'go', detail: `${names.map((n) => `${n} ${describeFingerprint(current[n])}`).join(', ') || 'no targets'}, as in the ${baseline.body.stage} report ${short(baseline.hash)}` };
}

function describeFingerprint(f: Report['fingerprints'][string]): string {
  if (!f) return 'absent';
  return f.kind === 'postgres' ? `postgres ${f.systemIdentifier}/${f.database}` : `redis ${f.runId}`;
}

async function dedupeRow(run: OpenedRun): Promise<PreflightCheck> {
  if (!run.dedupe) return { ok: true, status: 'n/a', detail: 'no effect dedupes' };
  const started = performance.now();
  await run.dedupe.ping();
  return { ok: true, status: 'go', detail: `${run.dedupe.kind} on ${run.plan.dedupe!.connection}, namespace ${run.dedupe.namespace}, answered in ${Math.round(performance.now() - started)} ms` };
}

/**
 * The live path must own everything from the cutoff on: the watermark query returns when the live
 * consumer started, and that must be at or before `liveBoundary.cutoff` (watermark <= cutoff). A
 * later start leaves the items between the cutoff and the start to nobody; no watermark at all
 * means the live consumer has not started.
 */
async function watermarkRow(run: OpenedRun): Promise<PreflightCheck> {
  const lb = run.plan.liveBoundary;
  if (!lb) return { ok: true, status: 'n/a', detail: 'no liveBoundary' };
  if (!lb.watermark) return { ok: true, status: 'n/a', detail: `no watermark query: confirm by hand that the live path owns everything from ${lb.cutoff}` };
  const db = await run.targets.sql(lb.watermark.connection);
  const { rows } = await db.transaction((tx) => tx.query<{ watermark: unknown }>(lb.watermark!.query), { readOnly: true });
  const raw = rows[0]?.watermark;
  const cutoff = new Date(lb.cutoff);
  if (raw === null || raw === undefined) {
    return { ok: false, status: 'no-go', code: 'LIVE_WATERMARK_MISSING', detail: `the watermark query on ${lb.watermark.connection} returned no watermark: the live path has not started`, hint: `start the live consumer (it must own everything from ${lb.cutoff}) before the backfill` };
  }
  const w = raw instanceof Date ? raw : new Date(String(raw));
  if (Number.isNaN(w.getTime())) {
    return { ok: false, status: 'no-go', code: 'LIVE_WATERMARK_FAILED', detail: `the watermark query returned ${JSON.stringify(raw)}, not a timestamp`, hint: 'the query must return one row with a `watermark` timestamp column' };
  }
  if (w.getTime() > cutoff.getTime()) {
    return {
      ok: false,
      status: 'no-go',
      code: 'LIVE_WATERMARK_AFTER_CUTOFF',
      detail: `the live path started at ${w.toISOString()}, after the cutoff ${cutoff.toISOString()}: items between the two belong to neither the backfill window nor the live path`,
      hint: 'move the cutoff and the window end to the live start in a new plan revision, or start the live consumer earlier',
    };
  }
  return { ok: true, status: 'go', detail: `live path started at ${w.toISOString()}, at or before the cutoff ${cutoff.toISOString()}` };
}

async function killSwitchRow(run: OpenedRun): Promise<PreflightCheck> {
  const control = await run.store.getControl(run.runId);
  if (control === 'run') {
    return { ok: true, status: 'go', detail: `the state store (${run.store.label}) answers; control flag run: reprise pause|abort ${run.runId} stops it` };
  }
  const last = (await run.store.events(run.runId, 200)).reverse().find((e) => e.action === control);
  const by = last ? ` (set by ${last.actor} at ${new Date(last.at).toISOString()}${typeof last.detail.reason === 'string' ? `: ${last.detail.reason}` : ''})` : '';
  return {
    ok: false,
    status: 'no-go',
    code: 'CONTROL_FLAG_SET',
    detail: `the run's control flag is ${control}${by}, left from before: the stage would stop or wait at once`,
    hint: `find out why it was ${control === 'abort' ? 'aborted' : 'paused'}; reprise resume ${run.runId} clears the flag`,
  };
}

async function probesRow(run: OpenedRun, opts: PreflightOptions): Promise<PreflightCheck> {
  if (opts.probes) return opts.probes(run);
  const probes = run.plan.rate.protect;
  return { ok: true, status: 'n/a', detail: probes.length ? `${probes.map((p) => p.name).join(', ')}: read during the run (throttled while over max), not here` : 'none declared' };
}

// ---- output -----------------------------------------------------------------------------------

function print(out: PreflightOutput | undefined, runId: string, stage: string, rows: PreflightRow[], approvals: VerifyResult | undefined): void {
  if (!out) return;
  if (out.json) {
    for (const r of rows) {
      out.record({ type: 'preflight', at: new Date().toISOString(), run: runId, stage, check: r.check, ok: r.ok, status: r.status, detail: r.detail, ...(r.code ? { code: r.code } : {}), ...(r.hint && !r.ok ? { hint: r.hint } : {}), ...(r.extra ?? {}) });
    }
    return;
  }
  const width = Math.max(5, ...rows.map((r) => r.check.length));
  out.info(`go/no-go: ${stage} of ${runId}`);
  out.info(`  ${'CHECK'.padEnd(width)}  ${'RESULT'.padEnd(6)}  DETAIL`);
  for (const r of rows) {
    out.info(`  ${r.check.padEnd(width)}  ${r.status.padEnd(6)}  ${r.ok ? '' : `${r.code}: `}${r.detail}`);
    if (r.check === 'approvals' && approvals) {
      for (const x of approvals.rejected) out.info(`  ${''.padEnd(width)}          refused ${x.file}: ${x.code}: ${x.message}`);
    }
  }
}

const short = (hash: string): string => `${hash.slice(0, 19)}…`;
