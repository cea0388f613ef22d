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
   * Reports the approver read: the dry-run report for canary, the canary report for full.
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
