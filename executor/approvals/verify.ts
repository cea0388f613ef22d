/**
 * The approval check the executor runs before `canary`, `full` and `reverse --execute`, and that
 * `reprise verify` runs alone. A pure function of its input: the caller reads the files, the
 * trust file and the clock, and passes them in; nothing here touches the disk, the network or
 * a subprocess.
 *
 * Each approval file is checked in this order, and refused with the first failing reason:
 *   1. a schema-valid approval file                          APPROVAL_INVALID
 *   2. an SSHSIG signature, Ed25519, namespace `reprise`,    APPROVAL_SIGNATURE_MALFORMED, APPROVAL_KEY_UNSUPPORTED,
 *      sha512/sha256, valid over the canonical statement     APPROVAL_WRONG_NAMESPACE, APPROVAL_HASH_UNSUPPORTED,
 *                                                            APPROVAL_TAMPERED, APPROVAL_BAD_SIGNATURE
 *   3. a key the trust file lists, for this principal, for   APPROVAL_UNTRUSTED_KEY, APPROVAL_PRINCIPAL_MISMATCH,
 *      namespace `reprise`, valid now and when issued        APPROVAL_NAMESPACE_NOT_ALLOWED, APPROVAL_KEY_NOT_VALID
 *   4. bound to this plan, revision, manifest, stage and     APPROVAL_WRONG_PLAN, APPROVAL_WRONG_REVISION,
 *      evidence                                              APPROVAL_WRONG_MANIFEST, APPROVAL_WRONG_STAGE, APPROVAL_WRONG_EVIDENCE
 *   5. within its validity (5 minutes of clock skew)         APPROVAL_NOT_YET_VALID, APPROVAL_EXPIRED
 *   6. not by the plan's author                              APPROVAL_BY_AUTHOR
 *   7. not already used by another run                       APPROVAL_ALREADY_USED
 * Then approvals are counted once per principal and once per key (APPROVAL_DUPLICATE_PRINCIPAL,
 * APPROVAL_DUPLICATE_KEY) against the stage's `min`.
 */
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { entriesForKey, matchPatternList, namesLiterally, type AllowedSigner, type AllowedSigners } from './allowed-signers.js';
import { REPRISE_NAMESPACE, verifySshSig, type SshSigFailure } from './sshsig.js';
import { approvalId, canonicalStatement, parseApprovalFile, type ApprovalEvidence, type ApprovalStage, type ApprovalStatement } from './statement.js';

/** Clock skew tolerated between the signer's and the verifier's clocks. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

/** An approval file as read by the caller. */
export interface ApprovalSource {
  /** Path or name, for messages. */
  file: string;
  bytes: Buffer | string;
}

export interface VerifyApprovalsInput {
  /** Hash of the manifest about to run (`sha256:…`). */
  manifestHash: string;
  /** Plan name and revision of that manifest. */
  plan: string;
  revision: number;
  /** The plan's author, who may not approve it (compared case-insensitively). */
  author: string;
  stage: ApprovalStage;
  /** `approvals.<stage>.min` of the plan; never taken below 1. */
  min: number;
  /**
   * The reports this run recorded: canary approvals must cite `dryRunReport`, full approvals
   * `canaryReport`; reverse approvals that cite a report must cite the one given here.
   */
  expectedEvidence: { dryRunReport?: string; canaryReport?: string; fullReport?: string };
  /**
   * Do not compare evidence (only `reprise verify` without `--evidence`, which says so).
   * The executor never sets it. @defaultValue false
   */
  skipEvidenceCheck?: boolean;
  approvals: ApprovalSource[];
  trust: AllowedSigners;
  now: Date;
  /** Id of the run about to use the approvals; with `priorUses`, reuse by another run is refused. */
  runId?: string;
  /** approvalId -> id of the run that already used it (from the state store, see LoadApprovalUses). */
  priorUses?: ReadonlyMap<string, string>;
  /**
   * approvalId -> when `runId` first used it. An approval this run already used is judged at that
   * time for expiry and key validity, so a stage resumed after an abort or a crash keeps the
   * approvals it started with (design: a resumed run needs a new approval only if the manifest
   * changed). Signature, trust, binding, author and reuse are always checked as of now.
   */
  usedAt?: ReadonlyMap<string, Date>;
  /** @defaultValue CLOCK_SKEW_MS */
  clockSkewMs?: number;
}

export interface AcceptedApproval {
  file: string;
  approver: string;
  approvalId: string;
  statement: ApprovalStatement;
  /** `SHA256:…` of the key that signed. */
  keyFingerprint: string;
  /** Line of the trust file that trusted the key. */
  trustLine: number;
}

export interface RejectedApproval {
  file: string;
  code: string;
  message: string;
  hint?: string;
  /** What the statement claims, when it could be read. */
  approver?: string;
  approvalId?: string;
}

export interface VerifyResult {
  /** Enough distinct valid approvals, and no run-level problem. */
  ok: boolean;
  stage: ApprovalStage;
  /** The effective minimum (at least 1). */
  min: number;
  /** Valid approvals counted: one per principal and per key. */
  accepted: AcceptedApproval[];
  rejected: RejectedApproval[];
  distinctPrincipals: number;
  /** Why the set as a whole is refused (APPROVAL_MISSING, EVIDENCE_MISSING, APPROVALS_INSUFFICIENT). */
  problem?: { code: string; message: string; hint: string };
  /** Evidence was not compared (skipEvidenceCheck). */
  evidenceChecked: boolean;
}

/**
 * Implemented by the executor's state store: for the given approval ids, the run that already
 * used each one (absent when unused). Feed the result to `verifyApprovals` as `priorUses`, and
 * record the accepted ids in the same transaction that starts the stage.
 */
export type LoadApprovalUses = (approvalIds: readonly string[]) => Promise<ReadonlyMap<string, string>>;

/** Ids of the approvals among these files that parse (to look up their prior uses). */
export function approvalIdsOf(approvals: readonly ApprovalSource[]): string[] {
  const ids: string[] = [];
  for (const a of approvals) {
    try {
      ids.push(approvalId(parseApprovalFile(a.bytes, a.file).statement));
    } catch {
      // refused later by verifyApprovals, with its reason
    }
  }
  return ids;
}

/** The evidence field an approval of `stage` must cite (reverse: none required). */
export function requiredEvidenceField(stage: ApprovalStage): keyof ApprovalEvidence | undefined {
  return stage === 'canary' ? 'dryRunReport' : stage === 'full' ? 'canaryReport' : undefined;
}

const REPORT_NAME: Record<keyof ApprovalEvidence, string> = { dryRunReport: 'dry-run report', canaryReport: 'canary report', fullReport: 'full report' };

const SIG_CODES: Record<Exclude<SshSigFailure, 'bad-signature'>, { code: string; hint: string }> = {
  malformed: { code: 'APPROVAL_SIGNATURE_MALFORMED', hint: 'the signature field must be an armored SSH signature as `reprise approve` writes it; sign again' },
  'unsupported-key': { code: 'APPROVAL_KEY_UNSUPPORTED', hint: 'sign with an ed25519 key (ssh-keygen -t ed25519, or reprise keygen)' },
  'wrong-namespace': { code: 'APPROVAL_WRONG_NAMESPACE', hint: 'a signature for git commits or files is not an approval; sign with `reprise approve` (namespace reprise)' },
  'unsupported-hash': { code: 'APPROVAL_HASH_UNSUPPORTED', hint: 'sign with `reprise approve` (sha512)' },
};

type Check = { ok: true; accepted: AcceptedApproval; keyBlob: Buffer } | { ok: false; rejected: RejectedApproval };

function evidenceMissingProblem(input: VerifyApprovalsInput, needed: keyof ApprovalEvidence): { code: string; message: string; hint: string } {
  return {
    code: 'EVIDENCE_MISSING',
    message: `stage ${input.stage} needs approvals of this run's ${REPORT_NAME[needed]}, and none is recorded for ${input.plan} r${input.revision}`,
    hint: input.stage === 'canary' ? 'run reprise dry-run first; reviewers approve its report' : 'run the canary stage first (it must complete); reviewers approve its report',
  };
}

/** Checks every approval file; never throws for anything in the files or the trust set. */
export function verifyApprovals(input: VerifyApprovalsInput): VerifyResult {
  const min = Math.max(1, Math.floor(Number.isFinite(input.min) ? input.min : 1));
  const evidenceChecked = !input.skipEvidenceCheck;
  const needed = requiredEvidenceField(input.stage);
  const base = { stage: input.stage, min, evidenceChecked };

  const evidenceMissing = evidenceChecked && needed !== undefined && input.expectedEvidence[needed] === undefined;
  if (evidenceMissing && input.approvals.length === 0) {
    return {
      ...base,
      ok: false,
      accepted: [],
      rejected: [],
      distinctPrincipals: 0,
      problem: evidenceMissingProblem(input, needed),
    };
  }

  const valid: Array<{ accepted: AcceptedApproval; keyBlob: Buffer }> = [];
  const rejected: RejectedApproval[] = [];
  for (const source of input.approvals) {
    let r: Check;
    try {
      r = checkOne(source, input);
    } catch (e) {
      // Defensive: a bug in a check must refuse, not crash or accept.
      r = { ok: false, rejected: { file: source.file, code: e instanceof RepriseError ? e.code : 'APPROVAL_INVALID', message: String((e as Error)?.message ?? e) } };
    }
    if (r.ok) valid.push(r);
    else rejected.push(r.rejected);
  }

  const accepted: AcceptedApproval[] = [];
  const principals = new Map<string, string>();
  const keys = new Map<string, string>();
  for (const v of valid) {
    const a = v.accepted;
    const principal = a.approver.toLowerCase();
    const key = v.keyBlob.toString('base64');
    const samePrincipal = principals.get(principal);
    const sameKey = keys.get(key);
    if (samePrincipal !== undefined) {
      rejected.push({
        file: a.file,
        code: 'APPROVAL_DUPLICATE_PRINCIPAL',
        message: `${a.approver} already approved in ${samePrincipal}; one principal counts once`,
        hint: `stage ${input.stage} needs ${min} different approvers`,
        approver: a.approver,
        approvalId: a.approvalId,
      });
    } else if (sameKey !== undefined) {
      rejected.push({
        file: a.file,
        code: 'APPROVAL_DUPLICATE_KEY',
        message: `signed with key ${a.keyFingerprint}, which already signed ${sameKey}; one key counts once`,
        hint: `stage ${input.stage} needs ${min} approvers with keys of their own`,
        approver: a.approver,
        approvalId: a.approvalId,
      });
    } else {
      principals.set(principal, a.file);
      keys.set(key, a.file);
      accepted.push(a);
    }
  }

  const result: VerifyResult = { ...base, ok: false, accepted, rejected, distinctPrincipals: accepted.length };
  if (evidenceMissing) {
    // The approvals were still checked (all but the missing evidence), so a set refused for
    // another reason — say the handler changed since approval — says so (see assertApproved).
    result.problem = evidenceMissingProblem(input, needed);
  } else if (input.approvals.length === 0) {
    result.problem = {
      code: 'APPROVAL_MISSING',
      message: `no approval for stage ${input.stage} of ${input.plan} r${input.revision} (${input.manifestHash})`,
      hint: `reviewers sign one with: reprise approve <plan> --stage ${input.stage} --key KEY --approver NAME${needed ? ' --evidence REPORT' : ''}`,
    };
  } else if (accepted.length < min) {
    const who = accepted.map((a) => a.approver).join(', ');
    result.problem = {
      code: 'APPROVALS_INSUFFICIENT',
      message: `stage ${input.stage} needs ${min} distinct approver${min === 1 ? '' : 's'}; ${accepted.length} valid${who ? ` (${who})` : ''}, ${rejected.length} refused`,
      hint: 'see each refused approval above; collect approvals from other reviewers',
    };
  } else result.ok = true;
  return result;
}

function checkOne(source: ApprovalSource, input: VerifyApprovalsInput): Check {
  const refuse = (code: string, message: string, hint?: string, statement?: ApprovalStatement): Check => ({
    ok: false,
    rejected: {
      file: source.file,
      code,
      message,
      ...(hint ? { hint } : {}),
      ...(statement ? { approver: statement.approver, approvalId: approvalId(statement) } : {}),
    },
  });

  // 1. the file
  let file;
  try {
    file = parseApprovalFile(source.bytes, source.file);
  } catch (e) {
    if (e instanceof RepriseError) {
      const message = e.message.startsWith(`${source.file} is `) ? e.message.slice(source.file.length + 4) : e.message;
      return { ok: false, rejected: { file: source.file, code: e.code, message, ...(e.hint ? { hint: e.hint } : {}) } };
    }
    throw e;
  }
  const st = file.statement;
  const id = approvalId(st);

  // 2. the signature, over the canonical statement
  const sig = verifySshSig(file.signature, canonicalStatement(st), REPRISE_NAMESPACE);
  if (!sig.ok) {
    if (sig.reason === 'bad-signature') {
      if (file.id !== undefined && file.id !== id) {
        return refuse('APPROVAL_TAMPERED', `the statement was changed after it was signed (it was signed as ${file.id}, it now hashes to ${id})`, 'never edit an approval; ask the approver to sign again', st);
      }
      return refuse('APPROVAL_BAD_SIGNATURE', `${sig.message}: the signature is not over this statement`, 'the signature is forged or corrupted; ask the approver to sign again', st);
    }
    const c = SIG_CODES[sig.reason];
    return refuse(c.code, sig.message, c.hint, st);
  }
  if (file.id !== undefined && file.id !== id) {
    return refuse('APPROVAL_INVALID', `its id ${file.id} does not match its statement (${id})`, 'approval files are written by `reprise approve`; re-create this one rather than editing it', st);
  }
  const key = sig.key;

  // 3. trust
  const trustFile = input.trust.file;
  const forKey = entriesForKey(input.trust, key.blob);
  if (forKey.length === 0) {
    return refuse('APPROVAL_UNTRUSTED_KEY', `signed by key ${key.fingerprint}, which is not in the trust file ${trustFile}`, 'add the approver\'s public key to the trust file (allowed_signers) through its owners\' review, or have a trusted approver sign', st);
  }
  const forPrincipal = forKey.filter((e) => matchPatternList(st.approver, e.principals));
  if (forPrincipal.length === 0) {
    const listed = [...new Set(forKey.flatMap((e) => e.principals))].join(',');
    return refuse('APPROVAL_PRINCIPAL_MISMATCH', `claims approver ${st.approver}, but key ${key.fingerprint} is trusted only for ${listed} (${trustFile} line ${forKey[0]!.line})`, 'pass --approver with the principal your key is listed under in the trust file', st);
  }
  const forNamespace = forPrincipal.filter((e) => e.namespaces === undefined || matchPatternList(REPRISE_NAMESPACE, e.namespaces));
  if (forNamespace.length === 0) {
    const e = forPrincipal[0]!;
    return refuse('APPROVAL_NAMESPACE_NOT_ALLOWED', `key ${key.fingerprint} is trusted only for namespaces ${e.namespaces!.join(',')}, not reprise (${trustFile} line ${e.line})`, 'add reprise to namespaces= of that trust file line, if this key may approve runs', st);
  }
  const issuedAt = new Date(st.issuedAt);
  // An approval this run already used is judged as of that first use (a resumed stage).
  const firstUse = input.runId !== undefined && input.priorUses?.get(id) === input.runId ? input.usedAt?.get(id) : undefined;
  const at = firstUse ?? input.now;
  const validEntry = forNamespace.find((e) => keyValidAt(e, at) && keyValidAt(e, issuedAt));
  if (!validEntry) {
    const e = forNamespace[0]!;
    const when = !keyValidAt(e, at) ? `${firstUse ? 'when this run first used it' : 'now'} (${at.toISOString()})` : `when the approval was issued (${st.issuedAt})`;
    return refuse('APPROVAL_KEY_NOT_VALID', `key ${key.fingerprint} is not valid ${when}: ${validityText(e)} (${trustFile} line ${e.line})`, 'sign again with the approver\'s current key; validity windows come from valid-after/valid-before in the trust file', st);
  }

  // 4. what it approves
  if (st.plan !== input.plan) {
    return refuse('APPROVAL_WRONG_PLAN', `approves plan ${st.plan}, not ${input.plan}`, 'this approval belongs to another plan; approve this one', st);
  }
  if (st.revision !== input.revision) {
    return refuse('APPROVAL_WRONG_REVISION', `approves revision ${st.revision} of ${st.plan}, not revision ${input.revision}`, 'approvals do not carry over to a new revision; review and approve this revision', st);
  }
  if (st.manifest !== input.manifestHash) {
    return refuse('APPROVAL_WRONG_MANIFEST', `approves manifest ${st.manifest}, but this plan compiles to ${input.manifestHash}`, 'the plan, its handler or an effect module changed after approval: recompile, review the diff, and approve again', st);
  }
  if (st.stage !== input.stage) {
    return refuse('APPROVAL_WRONG_STAGE', `approves stage ${st.stage}, not ${input.stage}`, input.stage === 'full' ? 'the full run needs its own approval, given after reading the canary report' : `sign an approval for stage ${input.stage}`, st);
  }
  if (!input.skipEvidenceCheck) {
    const needed = requiredEvidenceField(input.stage);
    const fields: Array<keyof ApprovalEvidence> = needed ? [needed] : (['dryRunReport', 'canaryReport', 'fullReport'] as const).filter((f) => st.evidence[f] !== undefined && input.expectedEvidence[f] !== undefined);
    for (const f of fields) {
      if (input.expectedEvidence[f] === undefined) continue; // nothing recorded to compare: EVIDENCE_MISSING for the set
      if (st.evidence[f] !== input.expectedEvidence[f]) {
        const cited = st.evidence[f] === undefined ? `cites no ${REPORT_NAME[f]}` : `cites ${REPORT_NAME[f]} ${st.evidence[f]}`;
        return refuse('APPROVAL_WRONG_EVIDENCE', `${cited}, but this run's ${REPORT_NAME[f]} is ${input.expectedEvidence[f]}`, `approvals bind the report the approver read: approve again with --evidence set to this run's ${REPORT_NAME[f]}`, st);
      }
    }
  }

  // 5. time
  const skew = input.clockSkewMs ?? CLOCK_SKEW_MS;
  const expiresAt = new Date(st.expiresAt);
  if (expiresAt.getTime() <= issuedAt.getTime()) {
    return refuse('APPROVAL_INVALID', `expires (${st.expiresAt}) before it is issued (${st.issuedAt})`, 'sign again with reprise approve', st);
  }
  if (issuedAt.getTime() > input.now.getTime() + skew) {
    return refuse('APPROVAL_NOT_YET_VALID', `issued at ${st.issuedAt}, in the future (now ${input.now.toISOString()}, 5 minutes of clock skew allowed)`, 'check the clocks of the signing machine and of this one', st);
  }
  if (expiresAt.getTime() + skew <= at.getTime()) {
    return refuse('APPROVAL_EXPIRED', `expired at ${st.expiresAt}`, 'approvals are short-lived on purpose; ask the approver to review and sign again (--expires sets the lifetime)', st);
  }

  // 6. separation of duties
  const author = input.author.trim().toLowerCase();
  if (author !== '' && st.approver.trim().toLowerCase() === author) {
    return refuse('APPROVAL_BY_AUTHOR', `approver ${st.approver} is the plan's author; a plan is approved by someone else`, 'ask another reviewer to approve', st);
  }
  if (author !== '' && forKey.some((e) => namesLiterally(author, e.principals, true))) {
    return refuse('APPROVAL_BY_AUTHOR', `signed with key ${key.fingerprint}, which the trust file lists for the plan's author ${input.author}`, 'ask another reviewer to approve, with their own key', st);
  }

  // 7. reuse
  const usedBy = input.priorUses?.get(id);
  if (usedBy !== undefined && usedBy !== input.runId) {
    return refuse('APPROVAL_ALREADY_USED', `already used by run ${usedBy}`, 'each approval allows one run; ask for a new approval', st);
  }

  return {
    ok: true,
    keyBlob: key.blob,
    accepted: { file: source.file, approver: st.approver, approvalId: id, statement: st, keyFingerprint: key.fingerprint, trustLine: validEntry.line },
  };
}

function keyValidAt(e: AllowedSigner, t: Date): boolean {
  if (e.validAfter && t.getTime() < e.validAfter.getTime()) return false;
  if (e.validBefore && t.getTime() >= e.validBefore.getTime()) return false;
  return true;
}

function validityText(e: AllowedSigner): string {
  const parts: string[] = [];
  if (e.validAfter) parts.push(`valid after ${e.validAfter.toISOString()}`);
  if (e.validBefore) parts.push(`valid before ${e.validBefore.toISOString()}`);
  return parts.join(', ');
}

/**
 * Throws the refusal (exit 3) when the check failed: the run-level problem, or — when every
 * refused approval has the same reason and none was valid — that reason, so the one-approval
 * case reads `error[APPROVAL_WRONG_MANIFEST]: …`.
 */
export function assertApproved(result: VerifyResult): void {
  if (result.ok) return;
  const details = {
    stage: result.stage,
    min: result.min,
    accepted: result.accepted.map((a) => ({ file: a.file, approver: a.approver, approvalId: a.approvalId })),
    rejected: result.rejected,
  };
  const p = result.problem ?? { code: 'APPROVALS_INSUFFICIENT', message: `stage ${result.stage} is not approved`, hint: 'collect approvals' };
  const codes = new Set(result.rejected.map((r) => r.code));
  const only = result.rejected[0];
  if ((p.code === 'APPROVALS_INSUFFICIENT' || p.code === 'EVIDENCE_MISSING') && result.accepted.length === 0 && codes.size === 1 && only) {
    const message = result.rejected.length === 1 ? `${only.file}: ${only.message}` : `${only.file}: ${only.message} (and ${result.rejected.length - 1} more approval${result.rejected.length === 2 ? '' : 's'} refused for the same reason)`;
    throw new RepriseError(only.code, message, { exit: ExitCode.refused, hint: only.hint ?? p.hint, details });
  }
  throw new RepriseError(p.code, p.message, { exit: ExitCode.refused, hint: p.hint, details });
}
