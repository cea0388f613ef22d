/* eslint-disable */
/**
 * generated — do not edit.
 * Source: schema/approval.schema.json. Regenerate with `npm run gen:types`; a test fails when this file is stale.
 */

/**
 * A signed approval: a statement and its SSHSIG signature (namespace `reprise`, Ed25519) over the statement's RFC 8785 canonical form.
 */
export interface ApprovalFile {
  statement: ApprovalStatement;
  /**
   * Armored SSHSIG (-----BEGIN SSH SIGNATURE-----) over the canonical statement.
   */
  signature: string;
  /**
   * The approval id: `sha256:` + hex sha256 of the statement's canonical form when it was signed. Not covered by the signature (it is derived from what is); it lets a verifier tell a statement edited after signing from a bad signature. Written by `reprise approve`; optional for files made by hand.
   */
  id?: string;
}
/**
 * What the approver signs.
 */
export interface ApprovalStatement {
  /**
   * Document kind and version.
   */
  kind: 'reprise/approval@1';
  /**
   * Hash of the approved manifest.
   */
  manifest: string;
  /**
   * Plan name.
   */
  plan: string;
  /**
   * Plan revision.
   */
  revision: number;
  /**
   * Stage this approval allows.
   */
  stage: 'canary' | 'full' | 'reverse';
  /**
   * Reports the approver read: the dry-run report for canary, the canary report for full; for reverse, optionally the report of the stage being reversed.
   */
  evidence: {
    /**
     * Hash of the dry-run report.
     */
    dryRunReport?: string;
    /**
     * Hash of the canary report.
     */
    canaryReport?: string;
    /**
     * Hash of the full-stage report (reverse approvals only).
     */
    fullReport?: string;
  };
  /**
   * Principal of the approver, as in the trust file.
   */
  approver: string;
  /**
   * When it was signed (ISO 8601 UTC).
   */
  issuedAt: string;
  /**
   * When it stops being valid (ISO 8601 UTC).
   */
  expiresAt: string;
  /**
   * Random hex making each approval unique, so its use can be recorded.
   */
  nonce: string;
}
