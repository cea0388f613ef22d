import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RepriseError } from '../../compiler/errors.js';
import { canonicalJson, contentHash } from '../../compiler/manifest.js';
import { approvalFileName, approvalId, approverSlug, parseApprovalFile, parseApprovalStage, writeApprovalFile } from '../../executor/approvals/statement.js';
import { evidenceFromReport, parseReport, readReportFile } from '../../executor/approvals/evidence.js';
import { MANIFEST, newKey, reportBody, signedFile, statementFor, tempDir, writeReport } from './helpers.js';

describe('approval statements', () => {
  it('have every field, a 16-byte hex nonce, and sign their canonical form', async () => {
    const st = statementFor();
    expect(Object.keys(st).sort()).toEqual(['approver', 'evidence', 'expiresAt', 'issuedAt', 'kind', 'manifest', 'nonce', 'plan', 'revision', 'stage']);
    expect(st.nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(statementFor().nonce).not.toBe(st.nonce);
    expect(st.kind).toBe('reprise/approval@1');
    const f = await signedFile(newKey(), st);
    expect(f.id).toBe(approvalId(st));
    expect(approvalId(st)).toBe(contentHash(st));
    expect(canonicalJson(st)).not.toContain('\n');
  });

  it('are written as DIR/<name>.r<rev>.<stage>.<approver-slug>.approval.json and read back', async () => {
    const dir = tempDir();
    const f = await signedFile(newKey(), statementFor({ approver: 'Alice.Smith+ops@Example.com' }));
    const path = writeApprovalFile(`${dir}/approvals`, f);
    expect(path).toBe(`${dir}/approvals/orders-fix.r3.canary.alice-smith-ops-example-com.approval.json`);
    expect(parseApprovalFile(readFileSync(path), path)).toEqual(f);
    expect(approverSlug('--A__b--')).toBe('a-b');
    expect(approvalFileName({ plan: 'p', revision: 1, stage: 'full', approver: 'x' })).toBe('p.r1.full.x.approval.json');
  });

  it('parse defensively: everything else is APPROVAL_INVALID (exit 3)', () => {
    for (const bad of ['{', '1', '{"statement":{},"signature":"x"}', Buffer.from([0xff])]) {
      try {
        parseApprovalFile(bad, 'f');
        throw new Error('parsed');
      } catch (e) {
        expect(e).toBeInstanceOf(RepriseError);
        expect((e as RepriseError).code).toBe('APPROVAL_INVALID');
        expect((e as RepriseError).exit).toBe(3);
      }
    }
  });

  it('--stage accepts canary, full, reverse only', () => {
    expect(parseApprovalStage('full')).toBe('full');
    expect(() => parseApprovalStage('dry-run')).toThrow(/canary, full or reverse/);
  });
});

describe('report files as evidence', () => {
  it('returns runId, stage, manifest and hash of an intact report', () => {
    const dir = tempDir();
    const { path, hash } = writeReport(dir, { runId: 'orders-fix.r3.aaaaaaaa', stage: 'dry-run', manifest: MANIFEST });
    expect(readReportFile(path)).toEqual({ file: path, runId: 'orders-fix.r3.aaaaaaaa', stage: 'dry-run', manifest: MANIFEST, hash, outcome: 'completed' });
  });

  it('says why a stage did not complete: the failed validations, or the stop', () => {
    const dir = tempDir();
    const failed = writeReport(dir, { runId: 'r', stage: 'canary', manifest: MANIFEST, outcome: 'validation-failed', validations: [{ name: 'totals', ok: true, detail: null }, { name: 'no-negative', ok: false, detail: 'returned ok = false' }] });
    expect(readReportFile(failed.path)).toMatchObject({ outcome: 'validation-failed', outcomeDetail: 'validation failed: no-negative (returned ok = false)' });
    const aborted = writeReport(dir, { runId: 'r', stage: 'canary', manifest: MANIFEST, outcome: 'aborted', abort: { reason: 'error-budget', detail: '12 errors' } });
    expect(readReportFile(aborted.path)).toMatchObject({ outcome: 'aborted', outcomeDetail: 'stopped: error-budget (12 errors)' });
  });

  it('REPORT_TAMPERED (exit 3) when any field changed after writing', () => {
    const body = reportBody({ runId: 'r', stage: 'canary', manifest: MANIFEST, counts: { items: 100 } });
    const edited = JSON.stringify({ ...body, counts: { items: 99 } });
    expect(() => parseReport(edited, 'r.json')).toThrow(expect.objectContaining({ code: 'REPORT_TAMPERED', exit: 3 }));
  });

  it('REPORT_INVALID / REPORT_NOT_FOUND (exit 2) for what is not a report', () => {
    expect(() => parseReport('{"kind":"other"}')).toThrow(expect.objectContaining({ code: 'REPORT_INVALID', exit: 2 }));
    expect(() => parseReport('nope')).toThrow(expect.objectContaining({ code: 'REPORT_INVALID' }));
    expect(() => parseReport(JSON.stringify({ ...reportBody({ runId: 'r', stage: 'canary', manifest: MANIFEST }), stage: 'later' }))).toThrow(expect.objectContaining({ code: 'REPORT_INVALID' }));
    expect(() => readReportFile('/nonexistent/x.report.json')).toThrow(expect.objectContaining({ code: 'REPORT_NOT_FOUND', exit: 2 }));
  });

  it('binds the right report for each stage, refusing the others (exit 2)', () => {
    const dry = { runId: 'r', stage: 'dry-run' as const, manifest: MANIFEST, hash: `sha256:${'1'.repeat(64)}`, outcome: 'completed' };
    const canary = { ...dry, stage: 'canary' as const };
    expect(evidenceFromReport('canary', dry, MANIFEST)).toEqual({ dryRunReport: dry.hash });
    expect(evidenceFromReport('full', canary, MANIFEST)).toEqual({ canaryReport: canary.hash });
    expect(evidenceFromReport('reverse', undefined, MANIFEST)).toEqual({});
    expect(evidenceFromReport('reverse', { ...dry, stage: 'full' }, MANIFEST)).toEqual({ fullReport: dry.hash });
    expect(() => evidenceFromReport('canary', undefined, MANIFEST)).toThrow(expect.objectContaining({ code: 'EVIDENCE_REQUIRED', exit: 2 }));
    expect(() => evidenceFromReport('full', dry, MANIFEST)).toThrow(expect.objectContaining({ code: 'EVIDENCE_WRONG_STAGE', exit: 2 }));
    expect(() => evidenceFromReport('canary', dry, `sha256:${'f'.repeat(64)}`)).toThrow(expect.objectContaining({ code: 'EVIDENCE_WRONG_MANIFEST', exit: 2 }));
  });

  it('EVIDENCE_NOT_COMPLETED (exit 2): a failed or aborted stage is never the evidence for the next one; reverse may cite it', () => {
    const canary = { runId: 'r', stage: 'canary' as const, manifest: MANIFEST, hash: `sha256:${'2'.repeat(64)}`, file: 'c.json', outcome: 'validation-failed', outcomeDetail: 'validation failed: totals' };
    expect(() => evidenceFromReport('full', canary, MANIFEST)).toThrow(expect.objectContaining({
      code: 'EVIDENCE_NOT_COMPLETED',
      exit: 2,
      message: 'c.json has outcome validation-failed (validation failed: totals); stage full is approved only on a canary that completed',
    }));
    expect(() => evidenceFromReport('full', { ...canary, outcome: 'aborted', outcomeDetail: undefined }, MANIFEST)).toThrow(expect.objectContaining({ code: 'EVIDENCE_NOT_COMPLETED' }));
    expect(() => evidenceFromReport('canary', { ...canary, stage: 'dry-run', outcome: undefined }, MANIFEST)).toThrow(expect.objectContaining({ code: 'EVIDENCE_NOT_COMPLETED', message: expect.stringContaining('records no outcome') }));
    expect(evidenceFromReport('reverse', canary, MANIFEST)).toEqual({ canaryReport: canary.hash });
  });
});
