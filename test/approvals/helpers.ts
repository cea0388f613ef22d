/**
 * Fixtures for the approval tests: keys made in the test (natively and with ssh-keygen), trust
 * files, signed statements, report files and a small plan. Nothing is shared between tests:
 * each gets its own temporary folder.
 */
import { spawnSync } from 'node:child_process';
import { createHash, createPrivateKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contentHash } from '../../compiler/manifest.js';
import { generateKeyPair } from '../../executor/approvals/keys.js';
import { armorSshSig } from '../../executor/approvals/sshsig.js';
import { buildStatement, canonicalStatement, signStatement, approvalFileBytes, type ApprovalFile, type ApprovalStatement, type StatementInput } from '../../executor/approvals/statement.js';
import { sshString, ed25519PublicKeyOf, type Ed25519PublicKey } from '../../executor/approvals/wire.js';
import { signSshSig } from '../../executor/approvals/sshsig.js';

export function tempDir(prefix = 'reprise-approvals-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A native reprise key. */
export interface TestKey {
  privateKey: KeyObject;
  publicKey: Ed25519PublicKey;
  publicKeyLine: string;
  pem: string;
  sign(message: string | Buffer): Promise<string>;
}

export function newKey(comment = 'test'): TestKey {
  const g = generateKeyPair(comment);
  const privateKey = createPrivateKey(g.privateKeyPem);
  return {
    privateKey,
    publicKey: ed25519PublicKeyOf(privateKey),
    publicKeyLine: g.publicKeyLine,
    pem: g.privateKeyPem,
    sign: async (m) => signSshSig(m, privateKey),
  };
}

export function hasSshKeygen(): boolean {
  return spawnSync('ssh-keygen', ['-?'], { encoding: 'utf8' }).error === undefined;
}

/** `ssh-keygen -t TYPE` in `dir`; returns the private key path (public at `.pub`). */
export function sshKeygen(dir: string, name: string, type: 'ed25519' | 'rsa' | 'ecdsa', passphrase = ''): string {
  const path = join(dir, name);
  const args = ['-q', '-t', type, '-N', passphrase, '-C', `${name}@test`, '-f', path];
  if (type === 'rsa') args.push('-b', '2048');
  const r = spawnSync('ssh-keygen', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  return path;
}

/** `ssh-keygen -Y sign` of `message` with a key file; the armored signature. */
export function sshSign(keyFile: string, message: string, namespace = 'reprise', env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync('ssh-keygen', ['-q', '-Y', 'sign', '-f', keyFile, '-n', namespace], { input: message, encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`ssh-keygen -Y sign failed: ${r.stderr}`);
  return r.stdout;
}

/** `ssh-keygen -Y verify`: true when OpenSSH accepts the signature for `principal`. */
export function sshVerify(dir: string, trustLine: string, principal: string, message: string, signature: string, namespace = 'reprise'): { ok: boolean; out: string } {
  const trust = join(dir, `allowed_signers.${Math.random().toString(16).slice(2)}`);
  const sig = `${trust}.sig`;
  writeFileSync(trust, `${trustLine}\n`);
  writeFileSync(sig, signature);
  const r = spawnSync('ssh-keygen', ['-Y', 'verify', '-f', trust, '-I', principal, '-n', namespace, '-s', sig], { input: message, encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

/** An Ed25519 SSHSIG with any namespace and hash name (to test refusals of what reprise never writes). */
export function craftSshSig(key: TestKey, message: string, opts: { namespace?: string; hash?: string; hashWith?: string; version?: number }): string {
  const namespace = opts.namespace ?? 'reprise';
  const hash = opts.hash ?? 'sha512';
  const digest = createHash(opts.hashWith ?? hash).update(message).digest();
  const magic = Buffer.from('SSHSIG');
  const signed = Buffer.concat([magic, sshString(namespace), sshString(Buffer.alloc(0)), sshString(hash), sshString(digest)]);
  const sig = cryptoSign(null, signed, key.privateKey);
  const version = Buffer.alloc(4);
  version.writeUInt32BE(opts.version ?? 1);
  const blob = Buffer.concat([
    magic,
    version,
    sshString(key.publicKey.blob),
    sshString(namespace),
    sshString(Buffer.alloc(0)),
    sshString(hash),
    sshString(Buffer.concat([sshString('ssh-ed25519'), sshString(sig)])),
  ]);
  return armorSshSig(blob);
}

export const MANIFEST = `sha256:${'a'.repeat(64)}`;
export const OTHER_MANIFEST = `sha256:${'b'.repeat(64)}`;
export const DRY_RUN_REPORT = `sha256:${'d'.repeat(64)}`;
export const CANARY_REPORT = `sha256:${'c'.repeat(64)}`;
export const NOW = new Date('2026-11-20T12:00:00.000Z');

export function statementFor(overrides: Partial<StatementInput> = {}): ApprovalStatement {
  return buildStatement({
    manifest: MANIFEST,
    plan: 'orders-fix',
    revision: 3,
    stage: 'canary',
    evidence: { dryRunReport: DRY_RUN_REPORT },
    approver: 'alice@example.com',
    issuedAt: new Date(NOW.getTime() - 3_600_000),
    expiresAt: new Date(NOW.getTime() + 71 * 3_600_000),
    ...overrides,
  });
}

export async function signedFile(key: { sign(m: string | Buffer): Promise<string> }, statement: ApprovalStatement): Promise<ApprovalFile> {
  return signStatement(statement, key);
}

export function fileBytes(approval: ApprovalFile): string {
  return approvalFileBytes(approval);
}

export { canonicalStatement };

/** A report file as the executor writes it: `hash` = contentHash(every other field). */
export function reportBody(fields: { runId: string; stage: 'dry-run' | 'canary' | 'full'; manifest: string; [k: string]: unknown }): Record<string, unknown> {
  const body = { kind: 'reprise/report@1', outcome: 'completed', counts: { items: 100 }, ...fields };
  return { ...body, hash: contentHash(body) };
}

export function writeReport(dir: string, fields: Parameters<typeof reportBody>[0]): { path: string; hash: string } {
  const body = reportBody(fields);
  mkdirSync(join(dir, 'reports'), { recursive: true });
  const path = join(dir, 'reports', `${fields.runId}.${fields.stage}.${Math.random().toString(16).slice(2, 8)}.report.json`);
  writeFileSync(path, `${JSON.stringify(body, null, 2)}\n`);
  return { path, hash: body.hash as string };
}

/** A valid plan (author dave@example.com; canary min 1, full min 2) with its handler, in `dir/plans`. */
export function writePlan(dir: string, opts: { name?: string; revision?: number; author?: string } = {}): string {
  const plans = join(dir, 'plans');
  mkdirSync(plans, { recursive: true });
  const path = join(plans, `${opts.name ?? 'orders-fix'}.yaml`);
  writeFileSync(
    path,
    `reprise: 1
name: ${opts.name ?? 'orders-fix'}
revision: ${opts.revision ?? 3}
owner: payments
author: ${opts.author ?? 'dave@example.com'}
reason: Recompute order totals after the rounding bug.
connections:
  orders: { env: ORDERS_DATABASE_URL }
selection:
  connection: orders
  query: select id from orders where created_at >= :window_start and created_at < :window_end
  key: id
  window: { start: 2026-10-01T00:00:00Z, end: 2026-11-12T00:00:00Z }
  expect: { min: 1000, max: 2000 }
processing:
  handler: ./orders-fix.handler.ts
sideEffects:
  - name: write_total
    kind: sql
    connection: orders
    statement: update orders set total = :total where id = :id
    backfill: replay
    live: apply
rate:
  itemsPerSecond: 10
approvals:
  canary: { min: 1 }
  full: { min: 2 }
`,
  );
  writeFileSync(join(plans, 'orders-fix.handler.ts'), "export default async function handler() {}\n");
  return path;
}

export function readJsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export function readText(path: string): string {
  return readFileSync(path, 'utf8');
}
