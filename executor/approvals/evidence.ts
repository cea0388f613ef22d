/**
 * Report files as evidence. An approval binds the hash of the report its approver read (the
 * dry-run report for canary, the canary report for full). A report file
 * (`<run>.<stage>.report.json`, written by the executor) carries
 * `hash = contentHash(every other field)`, so an edited report is caught before anyone signs it.
 */
import { readFileSync } from 'node:fs';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { contentHash } from '../../compiler/manifest.js';
import type { ApprovalEvidence } from './statement.js';

export const REPORT_KIND = 'reprise/report@1';
export type ReportStage = 'dry-run' | 'canary' | 'full' | 'reverse';
const STAGES: readonly string[] = ['dry-run', 'canary', 'full', 'reverse'];
const HASH = /^sha256:[0-9a-f]{64}$/;
const MAX_REPORT_BYTES = 256 * 1024 * 1024;

/** What an approval needs from a report. */
export interface ReportEvidence {
  /** Where it was read from, for messages. */
  file?: string;
  runId: string;
  stage: ReportStage;
  /** Manifest hash of the run that wrote the report. */
  manifest: string;
  /** The report's own hash (what an approval's evidence records). */
  hash: string;
  /** How the stage ended (`completed`, `validation-failed`, `aborted`, …), as the report says. */
  outcome?: string;
  /** Why it did not complete, in a few words (failed validations, the abort reason), when it did not. */
  outcomeDetail?: string;
}

/** Checks a report's kind, fields and hash. REPORT_INVALID (exit 2) or REPORT_TAMPERED (exit 3). */
export function parseReport(bytes: Buffer | string, file = 'report'): ReportEvidence {
  const invalid = (why: string): RepriseError =>
    new RepriseError('REPORT_INVALID', `${file} is not a reprise report: ${why}`, {
      exit: ExitCode.invalidInput,
      hint: 'pass the <run>.<stage>.report.json written by reprise dry-run or reprise run',
    });
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof bytes === 'string' ? bytes : new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw invalid(`not JSON (${(e as Error).message.slice(0, 80)})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid('not a JSON object');
  const r = parsed as Record<string, unknown>;
  if (r.kind !== REPORT_KIND) throw invalid(`kind is ${JSON.stringify(r.kind)?.slice(0, 40)}, not ${REPORT_KIND}`);
  if (typeof r.runId !== 'string' || r.runId === '') throw invalid('runId is missing');
  if (typeof r.stage !== 'string' || !STAGES.includes(r.stage)) throw invalid(`stage is ${JSON.stringify(r.stage)?.slice(0, 40)}`);
  if (typeof r.manifest !== 'string' || !HASH.test(r.manifest)) throw invalid('manifest is not a sha256: hash');
  if (typeof r.hash !== 'string' || !HASH.test(r.hash)) throw invalid('hash is not a sha256: hash');
  const { hash, ...body } = r;
  let actual: string;
  try {
    actual = contentHash(body);
  } catch (e) {
    throw invalid(`cannot be hashed (${(e as Error).message})`);
  }
  if (actual !== hash) {
    throw new RepriseError('REPORT_TAMPERED', `${file} was changed after it was written: its content hashes to ${actual}, the report says ${hash}`, {
      exit: ExitCode.refused,
      hint: 'use the report exactly as reprise wrote it (or read it again from the state store); never sign an edited report',
      details: { file, expected: hash, actual },
    });
  }
  const outcome = typeof r.outcome === 'string' ? r.outcome : undefined;
  const outcomeDetail = outcome === undefined || outcome === 'completed' ? undefined : outcomeDetailOf(r);
  return { file, runId: r.runId, stage: r.stage as ReportStage, manifest: r.manifest, hash, ...(outcome !== undefined ? { outcome } : {}), ...(outcomeDetail ? { outcomeDetail } : {}) };
}

/** Which validations failed, or why the stage stopped, from a report body (defensively: any shape). */
export function outcomeDetailOf(r: Record<string, unknown>): string | undefined {
  const failed = Array.isArray(r.validations)
    ? r.validations.filter((v): v is { name: string; detail?: unknown } => Boolean(v) && typeof v === 'object' && (v as { ok?: unknown }).ok !== true && typeof (v as { name?: unknown }).name === 'string')
    : [];
  if (failed.length) return `validation${failed.length === 1 ? '' : 's'} failed: ${failed.map((v) => (typeof v.detail === 'string' && v.detail ? `${v.name} (${v.detail})` : v.name)).join(', ')}`;
  const abort = r.abort as { reason?: unknown; detail?: unknown } | null | undefined;
  if (abort && typeof abort === 'object' && typeof abort.reason === 'string') return `stopped: ${abort.reason}${typeof abort.detail === 'string' && abort.detail ? ` (${abort.detail})` : ''}`;
  return undefined;
}

/**
 * Refuses (EVIDENCE_NOT_COMPLETED, exit 2) a report that cannot be the evidence of a canary or
 * full approval: a dry-run or canary that did not complete. A canary that failed validation or was
 * aborted is never the evidence for `full`. Reverse approvals may cite any report.
 */
export function assertCompletedEvidence(stage: 'canary' | 'full' | 'reverse', report: ReportEvidence): void {
  if (stage === 'reverse' || report.outcome === 'completed') return;
  const name = report.file ?? 'the report';
  const what = report.outcome === undefined ? 'records no outcome' : `has outcome ${report.outcome}${report.outcomeDetail ? ` (${report.outcomeDetail})` : ''}`;
  throw new RepriseError('EVIDENCE_NOT_COMPLETED', `${name} ${what}; stage ${stage} is approved only on a ${report.stage} that completed`, {
    exit: ExitCode.invalidInput,
    hint: report.stage === 'canary'
      ? 'a canary that failed validation or was aborted cannot be the evidence for full: find the cause, reverse what it applied if needed (docs/reversal.md), fix the plan in a new revision and start again from the dry-run'
      : 'run the stage again until it completes, and review the new report',
    details: { file: report.file ?? null, stage: report.stage, outcome: report.outcome ?? null },
  });
}

/** Reads and checks a report file. REPORT_NOT_FOUND (exit 2) when it cannot be read. */
export function readReportFile(path: string): ReportEvidence {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new RepriseError('REPORT_NOT_FOUND', `cannot read report ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, {
      exit: ExitCode.invalidInput,
      hint: 'reports are written to reports/ by reprise dry-run and reprise run (--reports DIR)',
    });
  }
  if (bytes.length > MAX_REPORT_BYTES) throw new RepriseError('REPORT_INVALID', `${path} is larger than ${MAX_REPORT_BYTES} bytes`, { exit: ExitCode.invalidInput });
  return parseReport(bytes, path);
}

/** Which evidence field a report fills: dry-run -> dryRunReport, canary -> canaryReport, full -> fullReport. */
export function evidenceField(stage: Exclude<ReportStage, 'reverse'>): 'dryRunReport' | 'canaryReport' | 'fullReport' {
  return stage === 'dry-run' ? 'dryRunReport' : stage === 'canary' ? 'canaryReport' : 'fullReport';
}

/** The report stage an approval of `stage` must cite (none for reverse, where evidence is optional). */
export function requiredEvidenceStage(stage: 'canary' | 'full' | 'reverse'): ReportStage | undefined {
  return stage === 'canary' ? 'dry-run' : stage === 'full' ? 'canary' : undefined;
}

/**
 * The evidence an approval of `stage` binds, from the report its approver read (`--evidence`).
 * Refuses (exit 2) a missing report for canary/full, a report of the wrong stage, a report
 * of another manifest, or one whose stage did not complete (EVIDENCE_NOT_COMPLETED). Reverse
 * takes any report of this manifest, whatever its outcome, or none.
 */
export function evidenceFromReport(stage: 'canary' | 'full' | 'reverse', report: ReportEvidence | undefined, manifestHash: string): ApprovalEvidence {
  const reportName = report?.file ?? 'the report';
  const needed = requiredEvidenceStage(stage);
  if (report === undefined) {
    if (!needed) return {};
    throw new RepriseError('EVIDENCE_REQUIRED', `stage ${stage} is approved on the ${needed} report: pass --evidence REPORT`, {
      exit: ExitCode.invalidInput,
      hint: needed === 'dry-run' ? 'the dry-run report is reports/<run>.dry-run.report.json, written by reprise dry-run' : 'the canary report is reports/<run>.canary.report.json, written by reprise run --stage canary',
    });
  }
  if (needed && report.stage !== needed) {
    throw new RepriseError('EVIDENCE_WRONG_STAGE', `${reportName} is a ${report.stage} report; stage ${stage} is approved on the ${needed} report`, {
      exit: ExitCode.invalidInput,
      hint: stage === 'full' ? 'read the canary report, then approve full with --evidence <run>.canary.report.json' : 'approve canary with --evidence <run>.dry-run.report.json',
    });
  }
  if (report.stage === 'reverse') {
    throw new RepriseError('EVIDENCE_WRONG_STAGE', `${reportName} is a reverse report; an approval cites the dry-run, canary or full report of the run`, {
      exit: ExitCode.invalidInput,
      hint: 'for a reverse approval, cite the report of the stage whose effects are reversed, or no report',
    });
  }
  if (report.manifest !== manifestHash) {
    throw new RepriseError('EVIDENCE_WRONG_MANIFEST', `${reportName} is a report of manifest ${report.manifest} (run ${report.runId}), but the plan compiles to ${manifestHash}`, {
      exit: ExitCode.invalidInput,
      hint: 'the plan changed since that report was written: run it again and review the new report',
    });
  }
  assertCompletedEvidence(stage, report);
  return { [evidenceField(report.stage)]: report.hash };
}
