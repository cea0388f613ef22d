/**
 * Fuzzing the approval check with fast-check: thousands of generated approval files (arbitrary
 * bytes, arbitrary JSON, and mutations of a valid signed approval: bytes flipped, inserted,
 * truncated; fields deleted, retyped, replaced; the signature's armor altered) and trust files
 * (arbitrary bytes and mutated allowed_signers lines). Every one is a refusal, never a crash:
 * the parsers throw only RepriseError, verifyApprovals never throws, and it accepts an approval
 * only when the signed statement is exactly the one that was signed.
 */
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RepriseError } from '../../compiler/errors.js';
import { buildStatement, canonicalStatement, generateKeyPair, loadTrustFile, parseAllowedSigners, parseApprovalFile, signSshSig, signStatement, verifyApprovals, type AllowedSigners } from '../../executor/approvals/index.js';

const NOW = new Date('2026-11-20T10:00:00Z');
const MANIFEST = `sha256:${'ab'.repeat(32)}`;
const DRY_RUN = `sha256:${'cd'.repeat(32)}`;
const RUNS = { approvals: 2_000, trust: 1_500, trustFiles: 100 };

const key = generateKeyPair('alice@example.com');
const privateKey = createPrivateKey(key.privateKeyPem);
const trustText = `alice@example.com namespaces="reprise" ${key.publicKeyLine}\n*@ops.example.com ${generateKeyPair('ops').publicKeyLine}\n`;
const trust = parseAllowedSigners(trustText, 'allowed_signers');

const statement = buildStatement({
  manifest: MANIFEST, plan: 'orders-tax-recompute', revision: 3, stage: 'canary', evidence: { dryRunReport: DRY_RUN },
  approver: 'alice@example.com', issuedAt: new Date('2026-11-20T09:00:00Z'), expiresAt: new Date('2026-11-23T09:00:00Z'),
});
const valid = await signStatement(statement, { sign: async (m) => signSshSig(m, privateKey) });
const validText = `${JSON.stringify(valid, null, 2)}\n`;
const signedCanonical = canonicalStatement(statement);

function verify(bytes: Buffer | string, t: AllowedSigners = trust) {
  return verifyApprovals({
    manifestHash: MANIFEST, plan: 'orders-tax-recompute', revision: 3, author: 'bob@example.com', stage: 'canary', min: 1,
    expectedEvidence: { dryRunReport: DRY_RUN }, approvals: [{ file: 'fuzz.approval.json', bytes }], trust: t, now: NOW,
  });
}

/** Only RepriseError may escape a parser. */
function refusesCleanly(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof RepriseError)) throw new Error(`not a refusal: ${(e as Error)?.stack ?? String(e)}`);
    expect(e.code).toMatch(/^[A-Z_]+$/);
  }
}

type Json = unknown;
function paths(v: Json, p: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  out.push(p);
  if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...p, Array.isArray(v) ? Number(k) : k], out);
  return out;
}

const byteEdit = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
);

function applyByteEdits(text: string, edits: Array<{ op: string; at: number; bit?: number; bytes?: Uint8Array; n?: number }>): Buffer {
  let b = Buffer.from(text);
  for (const e of edits) {
    const at = b.length ? e.at % b.length : 0;
    if (e.op === 'flip') { b = Buffer.from(b); if (b.length) b[at] = b[at]! ^ (1 << e.bit!); }
    else if (e.op === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from(e.bytes!), b.subarray(at)]);
    else if (e.op === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.n!)]);
    else b = b.subarray(0, at);
  }
  return b;
}

const jsonEdit = fc.tuple(fc.nat(), fc.oneof(fc.constant(undefined), fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('', 'full', 'reverse', 'sha256:', MANIFEST, DRY_RUN, 'ALICE@EXAMPLE.COM', 'bob@example.com', '2026-11-20T09:00:00Z', '9999-12-31T23:59:59Z', 'not a date', 3, 4, -1, 1e308, null)));

function applyJsonEdits(edits: Array<[number, Json]>): string {
  const doc = JSON.parse(validText) as Record<string, Json>;
  for (const [pick, value] of edits) {
    const all = paths(doc).filter((p) => p.length > 0);
    const path = all[pick % all.length]!;
    let parent = doc as Record<string | number, Json>;
    for (const seg of path.slice(0, -1)) parent = parent[seg] as Record<string | number, Json>;
    if (value === undefined) delete parent[path.at(-1)!];
    else parent[path.at(-1)!] = value;
  }
  return JSON.stringify(doc);
}

function mutateSignature(edits: Array<[number, number]>): string {
  const doc = JSON.parse(validText) as { signature: string };
  const chars = [...doc.signature];
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-\n ';
  for (const [at, c] of edits) chars[at % chars.length] = alphabet[c % alphabet.length]!;
  doc.signature = chars.join('');
  return JSON.stringify(doc);
}

const approvalBytes = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)),
  fc.string({ unit: 'binary', maxLength: 600 }),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.array(byteEdit, { minLength: 1, maxLength: 4 }).map((edits) => applyByteEdits(validText, edits)),
  fc.array(jsonEdit, { minLength: 1, maxLength: 3 }).map((edits) => applyJsonEdits(edits as Array<[number, Json]>)),
  fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 4 }).map(mutateSignature),
);

describe('fuzz: approval files', () => {
  it('the valid approval is accepted (the baseline the mutations start from)', () => {
    const r = verify(validText);
    expect(r.ok, JSON.stringify(r.rejected)).toBe(true);
  });

  it(`${RUNS.approvals} generated approval files: refused, never a crash; accepted only when the signed statement is intact`, () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(approvalBytes, (bytes) => {
        refusesCleanly(() => parseApprovalFile(bytes, 'fuzz.approval.json'));
        const r = verify(bytes);
        if (r.ok) {
          accepted++;
          expect(r.accepted.map((a) => canonicalStatement(a.statement))).toEqual([signedCanonical]);
        } else {
          refused++;
          expect(r.rejected.length + (r.problem ? 1 : 0)).toBeGreaterThan(0);
          for (const x of r.rejected) expect(x.code).toMatch(/^APPROVAL_[A-Z_]+$/);
        }
      }),
      { numRuns: RUNS.approvals },
    );
    console.log(`approval fuzz: ${RUNS.approvals} files, ${refused} refused, ${accepted} accepted (mutations that left the signed statement intact)`);
  });
});

const trustLine = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.tuple(fc.constantFrom('alice@example.com', '*', '!x', '"a b"', '', 'a,b,*@x'), fc.constantFrom('', 'namespaces="reprise"', 'namespaces="', 'valid-after=20260101', 'valid-before=2026', 'cert-authority', 'valid-after="19700101Z"', 'namespaces="a,b",valid-before=99991231235959Z'), fc.constantFrom('ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'sk-ssh-ed25519@openssh.com', 'ssh-ed25519-cert-v01@openssh.com', ''), fc.oneof(fc.constant(key.publicKeyLine.split(' ')[1]!), fc.base64String({ maxLength: 120 }), fc.string({ maxLength: 60 })), fc.string({ maxLength: 20 }))
    .map(([p, o, t, k, c]) => [p, o, t, k, c].filter((x) => x !== '').join(' ')),
  fc.tuple(fc.nat(), fc.nat({ max: 255 })).map(([at, c]) => {
    const line = trustText.split('\n')[0]!;
    const i = at % line.length;
    return line.slice(0, i) + String.fromCharCode(c) + line.slice(i + 1);
  }),
);
const trustBytes = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)),
  fc.tuple(fc.array(trustLine, { maxLength: 6 }), fc.constantFrom('\n', '\r\n')).map(([lines, eol]) => lines.join(eol)),
  fc.array(byteEdit, { minLength: 1, maxLength: 4 }).map((edits) => applyByteEdits(trustText, edits)),
);

describe('fuzz: trust files', () => {
  it(`${RUNS.trust} generated trust files: parsed or refused (TRUST_*), never a crash; verification against them never throws`, () => {
    let parsed = 0;
    fc.assert(
      fc.property(trustBytes, (bytes) => {
        let t: AllowedSigners | undefined;
        refusesCleanly(() => { t = parseAllowedSigners(bytes, 'fuzz_allowed_signers'); });
        if (t) {
          parsed++;
          const r = verify(validText, t);
          if (r.ok) expect(r.accepted.map((a) => canonicalStatement(a.statement))).toEqual([signedCanonical]);
        }
      }),
      { numRuns: RUNS.trust },
    );
    console.log(`trust fuzz: ${RUNS.trust} files, ${parsed} parsed, ${RUNS.trust - parsed} refused`);
  });

  it(`${RUNS.trustFiles} of them read from disk with loadTrustFile`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'reprise-fuzz-trust-'));
    fc.assert(
      fc.property(trustBytes, (bytes) => {
        const file = join(dir, 'allowed_signers');
        writeFileSync(file, bytes);
        refusesCleanly(() => loadTrustFile(file));
      }),
      { numRuns: RUNS.trustFiles },
    );
    refusesCleanly(() => loadTrustFile(join(dir, 'missing')));
  });
});
