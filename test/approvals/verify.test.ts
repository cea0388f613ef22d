/**
 * Every refusal of the approval verifier, each with real Ed25519 signatures made in the test
 * (natively, and through ssh-keygen for OpenSSH keys).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RepriseError } from '../../compiler/errors.js';
import { parseAllowedSigners, type AllowedSigners } from '../../executor/approvals/allowed-signers.js';
import { loadSigner } from '../../executor/approvals/keys.js';
import { armorSshSig, dearmorSshSig } from '../../executor/approvals/sshsig.js';
import { approvalId, canonicalStatement, type ApprovalFile, type ApprovalStatement } from '../../executor/approvals/statement.js';
import { approvalIdsOf, assertApproved, verifyApprovals, type VerifyApprovalsInput, type VerifyResult } from '../../executor/approvals/verify.js';
import {
  CANARY_REPORT,
  DRY_RUN_REPORT,
  MANIFEST,
  NOW,
  OTHER_MANIFEST,
  craftSshSig,
  fileBytes,
  newKey,
  signedFile,
  sshKeygen,
  sshSign,
  statementFor,
  tempDir,
  type TestKey,
} from './helpers.js';

const alice = newKey('alice');
const bob = newKey('bob');
const carol = newKey('carol');
const dave = newKey('dave'); // the plan's author
const stranger = newKey('stranger');

const trustText = [
  `alice@example.com ${alice.publicKeyLine}`,
  `bob@example.com namespaces="reprise" ${bob.publicKeyLine}`,
  `carol@example.com,*@ops.example.com,!mallory@ops.example.com ${carol.publicKeyLine}`,
  `dave@example.com ${dave.publicKeyLine}`,
].join('\n');
const trust = parseAllowedSigners(trustText, 'allowed_signers');

function input(over: Partial<VerifyApprovalsInput> = {}): VerifyApprovalsInput {
  return {
    manifestHash: MANIFEST,
    plan: 'orders-fix',
    revision: 3,
    author: 'dave@example.com',
    stage: 'canary',
    min: 1,
    expectedEvidence: { dryRunReport: DRY_RUN_REPORT },
    approvals: [],
    trust,
    now: NOW,
    ...over,
  };
}

async function approval(key: Pick<TestKey, 'sign'>, over: Parameters<typeof statementFor>[0] = {}, name = 'a.approval.json'): Promise<{ file: string; bytes: string }> {
  return { file: name, bytes: fileBytes(await signedFile(key, statementFor(over))) };
}

/** The one refusal of a single-approval check. */
function onlyRefusal(r: VerifyResult): { code: string; message: string } {
  expect(r.ok).toBe(false);
  expect(r.accepted).toHaveLength(0);
  expect(r.rejected).toHaveLength(1);
  return r.rejected[0]!;
}

function thrown(r: VerifyResult): RepriseError {
  try {
    assertApproved(r);
  } catch (e) {
    expect(e).toBeInstanceOf(RepriseError);
    expect((e as RepriseError).exit).toBe(3);
    return e as RepriseError;
  }
  throw new Error('expected a refusal');
}

function withTrust(text: string): AllowedSigners {
  return parseAllowedSigners(text, 'allowed_signers');
}

describe('verifyApprovals accepts', () => {
  it('a valid canary approval bound to this manifest and dry-run report', async () => {
    const a = await approval(alice);
    const r = verifyApprovals(input({ approvals: [a] }));
    expect(r.ok).toBe(true);
    expect(r.distinctPrincipals).toBe(1);
    expect(r.accepted[0]).toMatchObject({ file: 'a.approval.json', approver: 'alice@example.com', keyFingerprint: alice.publicKey.fingerprint, trustLine: 1 });
    expect(r.accepted[0]!.approvalId).toBe(approvalId(r.accepted[0]!.statement));
    expect(() => assertApproved(r)).not.toThrow();
  });

  it('two distinct approvers for full, bound to the canary report', async () => {
    const over = { stage: 'full' as const, evidence: { canaryReport: CANARY_REPORT } };
    const r = verifyApprovals(
      input({
        stage: 'full',
        min: 2,
        expectedEvidence: { dryRunReport: DRY_RUN_REPORT, canaryReport: CANARY_REPORT },
        approvals: [await approval(alice, over, 'a'), await approval(carol, { ...over, approver: 'oncall@ops.example.com' }, 'c')],
      }),
    );
    expect(r.ok).toBe(true);
    expect(r.accepted.map((a) => a.approver)).toEqual(['alice@example.com', 'oncall@ops.example.com']);
  });

  it('an approval signed with ssh-keygen -Y sign by an OpenSSH ed25519 key (also passphrase-protected)', async () => {
    const dir = tempDir();
    const plain = sshKeygen(dir, 'erin', 'ed25519');
    const locked = sshKeygen(dir, 'frank', 'ed25519', 'correct horse');
    const { writeFileSync, chmodSync, readFileSync } = await import('node:fs');
    const askpass = `${dir}/askpass.sh`;
    writeFileSync(askpass, "#!/bin/sh\necho 'correct horse'\n");
    chmodSync(askpass, 0o755);
    const t = withTrust(`erin@example.com ${readFileSync(`${plain}.pub`, 'utf8')}\nfrank@example.com ${readFileSync(`${locked}.pub`, 'utf8')}`);
    const erinSigner = loadSigner(plain);
    expect(erinSigner.kind).toBe('ssh-keygen');
    const saved = { ...process.env };
    process.env.SSH_ASKPASS = askpass;
    process.env.SSH_ASKPASS_REQUIRE = 'force';
    let frankFile;
    try {
      frankFile = await approval(loadSigner(locked), { approver: 'frank@example.com' }, 'f');
    } finally {
      process.env.SSH_ASKPASS = saved.SSH_ASKPASS;
      process.env.SSH_ASKPASS_REQUIRE = saved.SSH_ASKPASS_REQUIRE;
      if (saved.SSH_ASKPASS === undefined) delete process.env.SSH_ASKPASS;
      if (saved.SSH_ASKPASS_REQUIRE === undefined) delete process.env.SSH_ASKPASS_REQUIRE;
    }
    const r = verifyApprovals(input({ min: 2, trust: t, approvals: [await approval(erinSigner, { approver: 'erin@example.com' }, 'e'), frankFile] }));
    expect(r.rejected).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it('a clock 4 minutes behind the signer (skew allowance)', async () => {
    const a = await approval(alice, { issuedAt: new Date(NOW.getTime() + 4 * 60_000) });
    expect(verifyApprovals(input({ approvals: [a] })).ok).toBe(true);
    const b = await approval(alice, { issuedAt: new Date(NOW.getTime() - 3_600_000), expiresAt: new Date(NOW.getTime() - 4 * 60_000) });
    expect(verifyApprovals(input({ approvals: [b] })).ok).toBe(true);
  });

  it('file formatting does not matter: the signature covers the canonical statement', async () => {
    const f = await signedFile(alice, statementFor());
    const reordered = JSON.stringify({ id: f.id, signature: f.signature, statement: Object.fromEntries(Object.entries(f.statement).reverse()) });
    expect(verifyApprovals(input({ approvals: [{ file: 'x', bytes: reordered }] })).ok).toBe(true);
  });
});

describe('verifyApprovals refuses, each with its own code', () => {
  it('APPROVAL_MISSING: no approval at all', () => {
    const r = verifyApprovals(input());
    expect(r.ok).toBe(false);
    expect(r.problem?.code).toBe('APPROVAL_MISSING');
    const e = thrown(r);
    expect(e.code).toBe('APPROVAL_MISSING');
    expect(e.hint).toContain('reprise approve');
  });

  it('APPROVAL_WRONG_MANIFEST: approved before the plan, handler or a module changed', async () => {
    const r = verifyApprovals(input({ approvals: [await approval(alice, { manifest: OTHER_MANIFEST })] }));
    expect(onlyRefusal(r).code).toBe('APPROVAL_WRONG_MANIFEST');
    const e = thrown(r);
    expect(e.code).toBe('APPROVAL_WRONG_MANIFEST');
    expect(e.hint).toMatch(/handler or an effect module changed after approval: recompile/);
  });

  it('APPROVAL_WRONG_PLAN', async () => {
    const r = verifyApprovals(input({ approvals: [await approval(alice, { plan: 'users-fix' })] }));
    expect(onlyRefusal(r).code).toBe('APPROVAL_WRONG_PLAN');
  });

  it('APPROVAL_WRONG_REVISION', async () => {
    const r = verifyApprovals(input({ approvals: [await approval(alice, { revision: 2 })] }));
    expect(onlyRefusal(r)).toMatchObject({ code: 'APPROVAL_WRONG_REVISION', message: expect.stringContaining('revision 2') });
  });

  it('APPROVAL_WRONG_STAGE: a canary approval (of the dry-run) used for full', async () => {
    const r = verifyApprovals(input({ stage: 'full', expectedEvidence: { canaryReport: CANARY_REPORT }, approvals: [await approval(alice)] }));
    expect(onlyRefusal(r)).toMatchObject({ code: 'APPROVAL_WRONG_STAGE', message: 'approves stage canary, not full' });
    expect(thrown(r).code).toBe('APPROVAL_WRONG_STAGE');
  });

  it('APPROVAL_WRONG_EVIDENCE: a dry-run report that is not this run\'s', async () => {
    const r = verifyApprovals(input({ approvals: [await approval(alice, { evidence: { dryRunReport: CANARY_REPORT } })] }));
    expect(onlyRefusal(r).code).toBe('APPROVAL_WRONG_EVIDENCE');
  });

  it('APPROVAL_WRONG_EVIDENCE: a full approval citing another canary report, or none', async () => {
    const over = { stage: 'full' as const };
    const full = { stage: 'full' as const, expectedEvidence: { canaryReport: CANARY_REPORT } };
    let r = verifyApprovals(input({ ...full, approvals: [await approval(alice, { ...over, evidence: { canaryReport: DRY_RUN_REPORT } })] }));
    expect(onlyRefusal(r).code).toBe('APPROVAL_WRONG_EVIDENCE');
    r = verifyApprovals(input({ ...full, approvals: [await approval(alice, { ...over, evidence: { dryRunReport: DRY_RUN_REPORT } })] }));
    expect(onlyRefusal(r)).toMatchObject({ code: 'APPROVAL_WRONG_EVIDENCE', message: expect.stringContaining('cites no canary report') });
  });

  it('EVIDENCE_MISSING: the run has no report to bind (never silently unchecked)', async () => {
    const r = verifyApprovals(input({ stage: 'full', expectedEvidence: {}, approvals: [await approval(alice, { stage: 'full' })] }));
    expect(r.ok).toBe(false);
    expect(thrown(r).code).toBe('EVIDENCE_MISSING');
    const skipped = verifyApprovals(input({ stage: 'full', expectedEvidence: {}, skipEvidenceCheck: true, approvals: [await approval(alice, { stage: 'full', evidence: {} })] }));
    expect(skipped).toMatchObject({ ok: true, evidenceChecked: false });
  });

  it('EVIDENCE_MISSING still checks the approvals: when all are refused for one reason, that reason is the refusal', async () => {
    // The handler changed after approval: a new manifest, so also a new run without a dry-run report.
    const stale = await approval(alice, { manifest: OTHER_MANIFEST });
    const r = verifyApprovals(input({ expectedEvidence: {}, approvals: [stale] }));
    expect(r.problem?.code).toBe('EVIDENCE_MISSING');
    expect(onlyRefusal(r).code).toBe('APPROVAL_WRONG_MANIFEST');
    expect(thrown(r).code).toBe('APPROVAL_WRONG_MANIFEST');
    // None at all: the missing report is the first thing to fix.
    expect(thrown(verifyApprovals(input({ expectedEvidence: {}, approvals: [] }))).code).toBe('EVIDENCE_MISSING');
  });

  it('a stage resumed by the run that first used its approvals judges their expiry at that first use', async () => {
    const a = await approval(alice, { issuedAt: new Date(NOW.getTime() - 3 * 3_600_000), expiresAt: new Date(NOW.getTime() - 3_600_000) });
    const [id] = approvalIdsOf([a]);
    const run = 'orders-fix.r3.aaaaaaaa';
    const firstUse = new Date(NOW.getTime() - 2 * 3_600_000);
    const resumed = input({ approvals: [a], runId: run, priorUses: new Map([[id!, run]]), usedAt: new Map([[id!, firstUse]]) });
    expect(verifyApprovals(resumed).ok).toBe(true);
    // Not for another run (judged now: expired), and not without a recorded first use.
    expect(onlyRefusal(verifyApprovals({ ...resumed, runId: 'other.r1.bbbbbbbb' })).code).toBe('APPROVAL_EXPIRED');
    expect(onlyRefusal(verifyApprovals({ ...resumed, usedAt: undefined })).code).toBe('APPROVAL_EXPIRED');
    // Expired already when first used: still refused.
    expect(onlyRefusal(verifyApprovals({ ...resumed, usedAt: new Map([[id!, NOW]]) })).code).toBe('APPROVAL_EXPIRED');
  });

  it('reverse: evidence optional, but a cited report must be the expected one', async () => {
    const rev = { stage: 'reverse' as const };
    expect(verifyApprovals(input({ ...rev, expectedEvidence: {}, approvals: [await approval(alice, { ...rev, evidence: {} })] })).ok).toBe(true);
    const r = verifyApprovals(input({ ...rev, expectedEvidence: { canaryReport: CANARY_REPORT }, approvals: [await approval(alice, { ...rev, evidence: { canaryReport: DRY_RUN_REPORT } })] }));
    expect(onlyRefusal(r).code).toBe('APPROVAL_WRONG_EVIDENCE');
  });

  it('APPROVAL_EXPIRED and APPROVAL_NOT_YET_VALID (beyond 5 minutes of skew)', async () => {
    const expired = await approval(alice, { issuedAt: new Date('2026-11-01T00:00:00Z'), expiresAt: new Date(NOW.getTime() - 6 * 60_000) });
    expect(onlyRefusal(verifyApprovals(input({ approvals: [expired] })))).toMatchObject({ code: 'APPROVAL_EXPIRED' });
    const future = await approval(alice, { issuedAt: new Date(NOW.getTime() + 6 * 60_000), expiresAt: new Date(NOW.getTime() + 86_400_000) });
    expect(onlyRefusal(verifyApprovals(input({ approvals: [future] })))).toMatchObject({ code: 'APPROVAL_NOT_YET_VALID' });
  });

  it('APPROVAL_UNTRUSTED_KEY: the key is not in the trust file', async () => {
    const r = verifyApprovals(input({ approvals: [await approval(stranger)] }));
    expect(onlyRefusal(r)).toMatchObject({ code: 'APPROVAL_UNTRUSTED_KEY', message: expect.stringContaining(stranger.publicKey.fingerprint) });
  });

  it('APPROVAL_PRINCIPAL_MISMATCH: a trusted key claiming someone else', async () => {
    const r = verifyApprovals(input({ approvals: [await approval(alice, { approver: 'bob@example.com' })] }));
    expect(onlyRefusal(r)).toMatchObject({ code: 'APPROVAL_PRINCIPAL_MISMATCH', message: expect.stringContaining('trusted only for alice@example.com') });
    // a negated pattern excludes a principal the wildcard would match
    const m = verifyApprovals(input({ approvals: [await approval(carol, { approver: 'mallory@ops.example.com' })] }));
    expect(onlyRefusal(m).code).toBe('APPROVAL_PRINCIPAL_MISMATCH');
    // principals are case-sensitive, as in ssh
    const c = verifyApprovals(input({ approvals: [await approval(alice, { approver: 'Alice@example.com' })] }));
    expect(onlyRefusal(c).code).toBe('APPROVAL_PRINCIPAL_MISMATCH');
  });

  it('APPROVAL_KEY_NOT_VALID: outside valid-after/valid-before, now or when issued', async () => {
    const expiredKey = withTrust(`alice@example.com valid-before="20261101Z" ${alice.publicKeyLine}`);
    const r1 = verifyApprovals(input({ trust: expiredKey, approvals: [await approval(alice)] }));
    expect(onlyRefusal(r1)).toMatchObject({ code: 'APPROVAL_KEY_NOT_VALID', message: expect.stringContaining('not valid now') });
    const futureKey = withTrust(`alice@example.com valid-after="20261201Z" ${alice.publicKeyLine}`);
    expect(onlyRefusal(verifyApprovals(input({ trust: futureKey, approvals: [await approval(alice)] }))).code).toBe('APPROVAL_KEY_NOT_VALID');
    // valid now, but the statement says it was issued before the key became valid
    const rotated = withTrust(`alice@example.com valid-after="20261120Z" ${alice.publicKeyLine}`);
    const back = await approval(alice, { issuedAt: new Date('2026-11-19T12:00:00Z') });
    expect(onlyRefusal(verifyApprovals(input({ trust: rotated, approvals: [back] })))).toMatchObject({
      code: 'APPROVAL_KEY_NOT_VALID',
      message: expect.stringContaining('when the approval was issued'),
    });
    // inside the window: accepted
    const window = withTrust(`alice@example.com valid-after="20261101Z",valid-before="20261201Z" ${alice.publicKeyLine}`);
    expect(verifyApprovals(input({ trust: window, approvals: [await approval(alice)] })).ok).toBe(true);
  });

  it('APPROVAL_NAMESPACE_NOT_ALLOWED: the trust entry limits the key to other namespaces', async () => {
    const gitOnly = withTrust(`alice@example.com namespaces="git,file" ${alice.publicKeyLine}`);
    const r = verifyApprovals(input({ trust: gitOnly, approvals: [await approval(alice)] }));
    expect(onlyRefusal(r)).toMatchObject({ code: 'APPROVAL_NAMESPACE_NOT_ALLOWED', message: expect.stringContaining('git,file') });
    const wildcard = withTrust(`alice@example.com namespaces="re*" ${alice.publicKeyLine}`);
    expect(verifyApprovals(input({ trust: wildcard, approvals: [await approval(alice)] })).ok).toBe(true);
  });

  it('APPROVAL_WRONG_NAMESPACE: a signature made for git (or any namespace but reprise)', async () => {
    const st = statementFor();
    const file: ApprovalFile = { statement: st, signature: craftSshSig(alice, canonicalStatement(st), { namespace: 'git' }), id: approvalId(st) };
    const r = verifyApprovals(input({ approvals: [{ file: 'git.approval.json', bytes: fileBytes(file) }] }));
    expect(onlyRefusal(r)).toMatchObject({ code: 'APPROVAL_WRONG_NAMESPACE' });
  });

  it('APPROVAL_HASH_UNSUPPORTED', async () => {
    const st = statementFor();
    const file: ApprovalFile = { statement: st, signature: craftSshSig(alice, canonicalStatement(st), { hash: 'sha384' }), id: approvalId(st) };
    expect(onlyRefusal(verifyApprovals(input({ approvals: [{ file: 'h', bytes: fileBytes(file) }] }))).code).toBe('APPROVAL_HASH_UNSUPPORTED');
  });

  it('APPROVAL_KEY_UNSUPPORTED: ssh-rsa and ecdsa signatures (made by ssh-keygen), even when trusted', async () => {
    const dir = tempDir();
    const { readFileSync } = await import('node:fs');
    for (const type of ['rsa', 'ecdsa'] as const) {
      const keyFile = sshKeygen(dir, type, type);
      const st = statementFor();
      const file: ApprovalFile = { statement: st, signature: sshSign(keyFile, canonicalStatement(st)), id: approvalId(st) };
      const t = withTrust(`alice@example.com ${readFileSync(`${keyFile}.pub`, 'utf8')}`);
      const r = verifyApprovals(input({ trust: t, approvals: [{ file: type, bytes: fileBytes(file) }] }));
      expect(onlyRefusal(r)).toMatchObject({ code: 'APPROVAL_KEY_UNSUPPORTED', message: expect.stringContaining('only ssh-ed25519') });
    }
  });

  it('APPROVAL_BAD_SIGNATURE: a forged or corrupted signature', async () => {
    const f = await signedFile(alice, statementFor());
    // a signature by the trusted key over another statement, presented with this one
    const other = await signedFile(alice, statementFor({ approver: 'alice@example.com', nonce: '0'.repeat(32) }));
    const swapped = { ...f, signature: other.signature };
    expect(onlyRefusal(verifyApprovals(input({ approvals: [{ file: 's', bytes: fileBytes(swapped) }] }))).code).toBe('APPROVAL_BAD_SIGNATURE');
    // a stranger's signature relabelled with alice's public key
    const blob = dearmorSshSig(craftSshSig(stranger, canonicalStatement(f.statement), {}));
    alice.publicKey.raw.copy(blob, blob.indexOf(stranger.publicKey.raw));
    const forged = armorSshSig(blob);
    expect(onlyRefusal(verifyApprovals(input({ approvals: [{ file: 'f', bytes: fileBytes({ ...f, signature: forged }) }] }))).code).toBe('APPROVAL_BAD_SIGNATURE');
  });

  it('APPROVAL_TAMPERED: the statement was edited after signing', async () => {
    const f = await signedFile(alice, statementFor({ expiresAt: new Date(NOW.getTime() + 3_600_000) }));
    const edited: ApprovalFile = { ...f, statement: { ...f.statement, expiresAt: '2030-01-01T00:00:00.000Z' } };
    const r = verifyApprovals(input({ approvals: [{ file: 't', bytes: fileBytes(edited) }] }));
    expect(onlyRefusal(r)).toMatchObject({ code: 'APPROVAL_TAMPERED', message: expect.stringContaining('changed after it was signed') });
    const retargeted: ApprovalFile = { ...f, statement: { ...f.statement, manifest: OTHER_MANIFEST } };
    expect(onlyRefusal(verifyApprovals(input({ manifestHash: OTHER_MANIFEST, approvals: [{ file: 't', bytes: fileBytes(retargeted) }] }))).code).toBe('APPROVAL_TAMPERED');
  });

  it('APPROVAL_BY_AUTHOR: the author may not approve, whatever the case, nor with a key listed for them', async () => {
    const r = verifyApprovals(input({ author: 'Alice@Example.com', approvals: [await approval(alice)] }));
    expect(onlyRefusal(r).code).toBe('APPROVAL_BY_AUTHOR');
    const shared = withTrust(`dave@example.com,dave-alt@example.com ${dave.publicKeyLine}`);
    const alt = verifyApprovals(input({ trust: shared, approvals: [await approval(dave, { approver: 'dave-alt@example.com' })] }));
    expect(onlyRefusal(alt)).toMatchObject({ code: 'APPROVAL_BY_AUTHOR', message: expect.stringContaining("lists for the plan's author") });
  });

  it('APPROVALS_INSUFFICIENT: two approvals by one principal count once, and say so', async () => {
    const over = { stage: 'full' as const, evidence: { canaryReport: CANARY_REPORT } };
    const r = verifyApprovals(
      input({
        stage: 'full',
        min: 2,
        expectedEvidence: { canaryReport: CANARY_REPORT },
        approvals: [await approval(alice, over, 'a1'), await approval(alice, over, 'a2')],
      }),
    );
    expect(r.ok).toBe(false);
    expect(r.distinctPrincipals).toBe(1);
    expect(r.rejected).toEqual([expect.objectContaining({ file: 'a2', code: 'APPROVAL_DUPLICATE_PRINCIPAL', message: expect.stringContaining('already approved in a1') })]);
    const e = thrown(r);
    expect(e.code).toBe('APPROVALS_INSUFFICIENT');
    expect(e.message).toContain('needs 2 distinct approvers; 1 valid (alice@example.com)');
  });

  it('APPROVAL_DUPLICATE_KEY: one key signing as two principals counts once', async () => {
    const r = verifyApprovals(input({ min: 2, approvals: [await approval(carol, { approver: 'carol@example.com' }, 'c1'), await approval(carol, { approver: 'sre@ops.example.com' }, 'c2')] }));
    expect(r.ok).toBe(false);
    expect(r.rejected).toEqual([expect.objectContaining({ file: 'c2', code: 'APPROVAL_DUPLICATE_KEY' })]);
  });

  it('APPROVAL_ALREADY_USED: used by another run (the executor supplies prior uses)', async () => {
    const a = await approval(alice);
    const [id] = approvalIdsOf([a, { file: 'junk', bytes: 'junk' }]);
    expect(id).toMatch(/^sha256:/);
    const uses = new Map([[id!, 'orders-fix.r3.aaaaaaaa']]);
    expect(onlyRefusal(verifyApprovals(input({ runId: 'other.r1.bbbbbbbb', priorUses: uses, approvals: [a] }))).code).toBe('APPROVAL_ALREADY_USED');
    // the same run resuming may use it again
    expect(verifyApprovals(input({ runId: 'orders-fix.r3.aaaaaaaa', priorUses: uses, approvals: [a] })).ok).toBe(true);
  });

  it('APPROVAL_INVALID and APPROVAL_SIGNATURE_MALFORMED: files that are not approvals', async () => {
    const f = await signedFile(alice, statementFor());
    const cases: Array<[string | Buffer, string]> = [
      ['', 'APPROVAL_INVALID'],
      ['null', 'APPROVAL_INVALID'],
      ['[]', 'APPROVAL_INVALID'],
      [Buffer.from([0xc3, 0x28]), 'APPROVAL_INVALID'],
      [JSON.stringify({ ...f, extra: 1 }), 'APPROVAL_INVALID'],
      [JSON.stringify({ ...f, statement: { ...f.statement, kind: 'reprise/approval@2' } }), 'APPROVAL_INVALID'],
      [JSON.stringify({ ...f, statement: { ...f.statement, issuedAt: 'yesterday' } }), 'APPROVAL_INVALID'],
      [JSON.stringify({ ...f, id: `sha256:${'0'.repeat(64)}` }), 'APPROVAL_INVALID'],
      [Buffer.alloc(300 * 1024, 0x20), 'APPROVAL_INVALID'],
      [JSON.stringify({ ...f, signature: '-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----' }), 'APPROVAL_SIGNATURE_MALFORMED'],
    ];
    for (const [bytes, code] of cases) {
      const r = verifyApprovals(input({ approvals: [{ file: 'x.approval.json', bytes }] }));
      expect(onlyRefusal(r).code, String(bytes).slice(0, 60)).toBe(code);
    }
  });

  it('expires before issued is invalid', async () => {
    const a = await approval(alice, { issuedAt: new Date(NOW.getTime() - 60_000), expiresAt: new Date(NOW.getTime() - 120_000) });
    expect(onlyRefusal(verifyApprovals(input({ approvals: [a] }))).code).toBe('APPROVAL_INVALID');
  });

  it('a min below 1 still needs one approval', () => {
    expect(verifyApprovals(input({ min: 0 })).ok).toBe(false);
  });

  it('mixed results: the table lists accepted and refused, min decides', async () => {
    const over = { stage: 'full' as const, evidence: { canaryReport: CANARY_REPORT } };
    const r = verifyApprovals(
      input({
        stage: 'full',
        min: 2,
        expectedEvidence: { canaryReport: CANARY_REPORT },
        approvals: [await approval(alice, over, 'a'), await approval(bob, { ...over, manifest: OTHER_MANIFEST, approver: 'bob@example.com' }, 'b'), await approval(stranger, over, 's')],
      }),
    );
    expect(r.accepted.map((a) => a.file)).toEqual(['a']);
    expect(r.rejected.map((x) => [x.file, x.code])).toEqual([
      ['b', 'APPROVAL_WRONG_MANIFEST'],
      ['s', 'APPROVAL_UNTRUSTED_KEY'],
    ]);
    expect(thrown(r).code).toBe('APPROVALS_INSUFFICIENT');
  });
});

describe('robustness', () => {
  it('arbitrary bytes as an approval file: a refusal, never a throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        const r = verifyApprovals(input({ approvals: [{ file: 'fuzz', bytes: Buffer.from(bytes) }] }));
        expect(r.ok).toBe(false);
        expect(r.rejected[0]!.code).toMatch(/^APPROVAL_/);
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary JSON values as an approval file: a refusal, never a throw', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = verifyApprovals(input({ approvals: [{ file: 'fuzz', bytes: JSON.stringify(v) ?? '' }] }));
        expect(r.ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('mutated valid approvals: refused, or (whitespace only) still exactly the signed statement', async () => {
    const f = await signedFile(alice, statementFor());
    const good = fileBytes(f);
    const signed = canonicalStatement(f.statement);
    fc.assert(
      fc.property(fc.array(fc.record({ at: fc.nat(), ch: fc.string({ minLength: 1, maxLength: 1 }) }), { minLength: 1, maxLength: 3 }), (edits) => {
        const chars = [...good];
        for (const e of edits) chars[e.at % chars.length] = e.ch;
        const r = verifyApprovals(input({ approvals: [{ file: 'm', bytes: chars.join('') }] }));
        if (r.ok) expect(canonicalStatement(r.accepted[0]!.statement as ApprovalStatement)).toBe(signed);
        else expect(r.rejected[0]!.code).toMatch(/^APPROVAL_/);
      }),
      { numRuns: 300 },
    );
  });
});
