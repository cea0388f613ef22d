/**
 * Approval statements: what a reviewer signs, the file that carries it, and defensive parsing.
 *
 * The signature covers the statement's RFC 8785 canonical JSON (compiler/manifest.ts
 * `canonicalJson`), so whitespace and key order in the file do not matter and any changed value
 * breaks it. An approval's id is the content hash of its statement; the executor records each
 * use under that id.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { canonicalJson, contentHash } from '../../compiler/manifest.js';
import { readSchema } from '../../compiler/paths.js';
import type { ApprovalFile, ApprovalStatement } from '../../schema/approval.types.js';

export type { ApprovalFile, ApprovalStatement } from '../../schema/approval.types.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

export const APPROVAL_KIND = 'reprise/approval@1';
/** Stages an approval can allow (`dry-run` needs none). */
export type ApprovalStage = ApprovalStatement['stage'];
export const APPROVAL_STAGES: readonly ApprovalStage[] = ['canary', 'full', 'reverse'];
/** Approval files are small; anything larger is refused before parsing. */
export const MAX_APPROVAL_FILE_BYTES = 256 * 1024;
/** Default lifetime of an approval (`--expires`). */
export const DEFAULT_APPROVAL_TTL = '72h';

export type ApprovalEvidence = ApprovalStatement['evidence'];

export interface StatementInput {
  manifest: string;
  plan: string;
  revision: number;
  stage: ApprovalStage;
  evidence: ApprovalEvidence;
  approver: string;
  issuedAt: Date;
  expiresAt: Date;
  /** 32 hex characters. @defaultValue 16 random bytes */
  nonce?: string;
}

export function buildStatement(input: StatementInput): ApprovalStatement {
  const evidence: ApprovalEvidence = {};
  if (input.evidence.dryRunReport !== undefined) evidence.dryRunReport = input.evidence.dryRunReport;
  if (input.evidence.canaryReport !== undefined) evidence.canaryReport = input.evidence.canaryReport;
  if (input.evidence.fullReport !== undefined) evidence.fullReport = input.evidence.fullReport;
  return {
    kind: APPROVAL_KIND,
    manifest: input.manifest,
    plan: input.plan,
    revision: input.revision,
    stage: input.stage,
    evidence,
    approver: input.approver,
    issuedAt: input.issuedAt.toISOString(),
    expiresAt: input.expiresAt.toISOString(),
    nonce: input.nonce ?? randomBytes(16).toString('hex'),
  };
}

/** The exact bytes that are signed: RFC 8785 canonical JSON of the statement. */
export function canonicalStatement(statement: ApprovalStatement): string {
  return canonicalJson(statement);
}

/** The approval's id (`sha256:…` of the canonical statement); the executor records uses under it. */
export function approvalId(statement: ApprovalStatement): string {
  return contentHash(statement);
}

/** Anything that turns a message into an armored SSHSIG (a keys.ts Signer, or a test's). */
export interface StatementSigner {
  sign(message: string | Buffer): Promise<string>;
}

/** Signs the canonical statement; the file carries the statement, the signature and the id. */
export async function signStatement(statement: ApprovalStatement, signer: StatementSigner): Promise<ApprovalFile> {
  const signature = await signer.sign(canonicalStatement(statement));
  return { statement, signature, id: approvalId(statement) };
}

/** `alice@example.com` -> `alice-example-com`: lowercase, every run of other characters a `-`. */
export function approverSlug(approver: string): string {
  return approver.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'approver';
}

/** `<plan>.r<rev>.<stage>.<approver-slug>.approval.json` */
export function approvalFileName(statement: Pick<ApprovalStatement, 'plan' | 'revision' | 'stage' | 'approver'>): string {
  return `${statement.plan}.r${statement.revision}.${statement.stage}.${approverSlug(statement.approver)}.approval.json`;
}

/** The file's content: pretty JSON (the signature covers the canonical form, not these bytes). */
export function approvalFileBytes(approval: ApprovalFile): string {
  const ordered: ApprovalFile = { statement: approval.statement, signature: approval.signature };
  if (approval.id !== undefined) ordered.id = approval.id;
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

/** Writes `DIR/<name>.r<rev>.<stage>.<slug>.approval.json` atomically; returns its path. */
export function writeApprovalFile(dir: string, approval: ApprovalFile): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, approvalFileName(approval.statement));
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, approvalFileBytes(approval));
  renameSync(tmp, path);
  return path;
}

let validator: ValidateFunction | undefined;
function validateApproval(value: unknown): string | undefined {
  if (!validator) {
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    addFormats(ajv);
    validator = ajv.compile(readSchema('approval.schema.json'));
  }
  if (validator(value)) return undefined;
  return (validator.errors ?? [])
    .slice(0, 3)
    .map((e) => `${e.instancePath || '(top)'} ${e.message ?? e.keyword}${e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: unknown }).additionalProperty).slice(0, 40)})` : ''}`)
    .join('; ');
}

/**
 * Parses an approval file from arbitrary bytes. Anything that is not a schema-valid approval
 * throws RepriseError APPROVAL_INVALID (exit 3); nothing else is ever thrown.
 */
export function parseApprovalFile(bytes: Buffer | Uint8Array | string, file = 'approval'): ApprovalFile {
  const invalid = (why: string): RepriseError =>
    new RepriseError('APPROVAL_INVALID', `${file} is not a reprise approval: ${why}`, {
      exit: ExitCode.refused,
      hint: 'approval files are written by `reprise approve`; re-create this one rather than editing it',
      details: { file },
    });
  let text: string;
  if (typeof bytes === 'string') text = bytes;
  else {
    if (bytes.length > MAX_APPROVAL_FILE_BYTES) throw invalid(`${bytes.length} bytes is far larger than an approval`);
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw invalid('not UTF-8 text');
    }
  }
  if (text.length > MAX_APPROVAL_FILE_BYTES) throw invalid(`${text.length} characters is far larger than an approval`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw invalid(`not JSON (${(e as Error).message.slice(0, 80)})`);
  }
  const problem = validateApproval(parsed);
  if (problem !== undefined) throw invalid(problem);
  const approval = parsed as ApprovalFile;
  for (const field of ['issuedAt', 'expiresAt'] as const) {
    if (Number.isNaN(Date.parse(approval.statement[field]))) throw invalid(`statement.${field} is not a usable time`);
  }
  return approval;
}

/** `--stage` for approve and verify: canary, full or reverse (exit 2 otherwise). */
export function parseApprovalStage(text: string): ApprovalStage {
  if ((APPROVAL_STAGES as readonly string[]).includes(text)) return text as ApprovalStage;
  throw new RepriseError('USAGE', `--stage ${JSON.stringify(text)}: approvals are for canary, full or reverse`, {
    exit: ExitCode.invalidInput,
    hint: text === 'dry-run' ? 'a dry-run needs no approval' : 'use --stage canary, --stage full or --stage reverse',
  });
}
