/**
 * Signed approvals: SSHSIG (Ed25519, namespace `reprise`) over RFC 8785 statements, trust from
 * an allowed_signers file, and the verifier the executor runs before canary, full and reverse.
 * See docs/approvals.md.
 */
export {
  verifyApprovals,
  assertApproved,
  approvalIdsOf,
  requiredEvidenceField,
  CLOCK_SKEW_MS,
  type VerifyApprovalsInput,
  type VerifyResult,
  type AcceptedApproval,
  type RejectedApproval,
  type ApprovalSource,
  type LoadApprovalUses,
} from './verify.js';
export {
  buildStatement,
  signStatement,
  canonicalStatement,
  approvalId,
  approvalFileName,
  approverSlug,
  writeApprovalFile,
  parseApprovalFile,
  APPROVAL_KIND,
  APPROVAL_STAGES,
  DEFAULT_APPROVAL_TTL,
  type ApprovalFile,
  type ApprovalStatement,
  type ApprovalStage,
  type ApprovalEvidence,
  type StatementInput,
  type StatementSigner,
} from './statement.js';
export { parseApprovalStage } from './statement.js';
export { parseAllowedSigners, matchPatternList, type AllowedSigners, type AllowedSigner } from './allowed-signers.js';
export { readReportFile, parseReport, evidenceField, evidenceFromReport, assertCompletedEvidence, outcomeDetailOf, requiredEvidenceStage, REPORT_KIND, type ReportEvidence, type ReportStage } from './evidence.js';
export { resolveTrustPath, loadTrustFile, readApprovalSources, DEFAULT_APPROVALS_DIR } from './load.js';
export { signSshSig, verifySshSig, parseSshSig, REPRISE_NAMESPACE, type SshSigVerification } from './sshsig.js';
export { loadSigner, writeKeyPair, generateKeyPair, parseEd25519PublicKeyLine, defaultKeyComment, type Signer } from './keys.js';
