/**
 * A stage report (`reprise/report@1`, schema/report.schema.json): what one stage of a run did.
 * The executor assembles the body, `finalizeReport` seals it with its content hash, and
 * `writeReportFiles` (./write.ts) writes the JSON, Markdown and HTML renderings. Approvals bind
 * the hash, so it covers every field and is recomputed by `parseReport` whenever a report is read.
 */
import { contentHash } from '../../compiler/manifest.js';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import type { EffectCounts, Report, ReportStage } from '../../schema/report.types.js';

export type {
  AbortInfo,
  CanarySummary,
  CountGuard,
  EffectCounts,
  EffectPreview,
  EffectReport,
  ErrorSample,
  Fingerprint,
  Report,
  ReportCounts,
  ReportErrors,
  ReportStage,
  ReportThrottle,
  Row,
  ThrottleEpisode,
  ThroughputBucket,
  ValidationResult,
} from '../../schema/report.types.js';

export const REPORT_KIND = 'reprise/report@1';

/** A report before it is sealed: every field but `hash`. */
export type ReportBody = Omit<Report, 'hash'>;

/** Ledger statuses in the order reports list them. */
export const EFFECT_STATUSES = ['applied', 'suppressed', 'skipped-dup', 'claimed', 'failed', 'captured', 'reversed'] as const satisfies ReadonlyArray<keyof EffectCounts>;

/** Every status at zero. */
export function emptyEffectCounts(): EffectCounts {
  return { applied: 0, suppressed: 0, 'skipped-dup': 0, claimed: 0, failed: 0, captured: 0, reversed: 0 };
}

/** `sha256:…` of the canonical JSON of a report body (any `hash` field is ignored). */
export function reportHash(body: ReportBody | Report): string {
  const { hash: _ignored, ...rest } = body as Report;
  return contentHash(rest);
}

/**
 * Seals a report: returns a plain-JSON copy of `body` (dates and other non-JSON values become
 * what `JSON.stringify` makes of them, so the file and the hash agree) with `hash` set to the
 * content hash of every other field. A `hash` already present in `body` is recomputed.
 */
export function finalizeReport(body: ReportBody | Report): Report {
  const { hash: _ignored, ...rest } = body as Report;
  const plain = JSON.parse(JSON.stringify(rest)) as ReportBody;
  if (plain.kind !== REPORT_KIND) {
    throw new RepriseError('REPORT_INVALID', `report kind must be ${REPORT_KIND}, got ${JSON.stringify(plain.kind)}`, {
      exit: ExitCode.internal,
      hint: 'this is a bug in reprise; please report it',
    });
  }
  return { ...plain, hash: contentHash(plain) };
}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * The file name of a stage's report without its extension: `<run>.<stage>.report`, so the files
 * are `<run>.<stage>.report.json`, `.md` and `.html`. Refuses ids that could escape a directory.
 */
export function reportFileBase(runId: string, stage: ReportStage): string {
  if (!SAFE_NAME.test(runId) || runId.includes('..')) {
    throw new RepriseError('REPORT_INVALID', `run id ${JSON.stringify(runId)} cannot name a report file`, {
      exit: ExitCode.internal,
      hint: 'run ids are <plan>.r<revision>.<hash8>',
    });
  }
  return `${runId}.${stage}.report`;
}

/**
 * Reads a report's JSON text, refusing anything that is not a `reprise/report@1` document
 * whose `hash` matches its content (a report edited after it was written is caught here).
 * The shape is otherwise trusted; schema/report.schema.json describes it.
 */
export function parseReport(text: string, file = 'report'): Report {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new RepriseError('REPORT_INVALID', `${file} is not JSON: ${(e as Error).message}`, {
      hint: 'pass the .report.json written by reprise dry-run or reprise run',
    });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed) || (parsed as Report).kind !== REPORT_KIND) {
    throw new RepriseError('REPORT_INVALID', `${file} is not a reprise report`, {
      hint: 'pass the .report.json written by reprise dry-run or reprise run',
    });
  }
  const report = parsed as Report;
  if (typeof report.hash !== 'string' || reportHash(report) !== report.hash) {
    throw new RepriseError('REPORT_HASH_MISMATCH', `${file}: its content does not match its hash`, {
      exit: ExitCode.refused,
      hint: 'the report was edited after it was written; use the report reprise wrote',
    });
  }
  return report;
}
