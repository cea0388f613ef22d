import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dearmorSshSig, parseSshSig, signSshSig, verifySshSig } from '../../executor/approvals/sshsig.js';
import { parseEd25519PublicKeyLine } from '../../executor/approvals/keys.js';
import { armorSshSig } from '../../executor/approvals/sshsig.js';
import { craftSshSig, newKey, sshKeygen, sshSign, sshVerify, tempDir } from './helpers.js';

const message = '{"kind":"reprise/approval@1","plan":"orders-fix"}';

describe('SSHSIG, natively', () => {
  it('signs and verifies Ed25519 over the message, namespace reprise, sha512', () => {
    const key = newKey();
    const sig = signSshSig(message, key.privateKey);
    expect(sig.startsWith('-----BEGIN SSH SIGNATURE-----\n')).toBe(true);
    expect(sig.endsWith('-----END SSH SIGNATURE-----\n')).toBe(true);
    for (const line of sig.trim().split('\n').slice(1, -1)) expect(line.length).toBeLessThanOrEqual(70);
    const v = verifySshSig(sig, message);
    expect(v.ok).toBe(true);
    if (v.ok) {
      expect(v.key.blob.equals(key.publicKey.blob)).toBe(true);
      expect(v.signature.hashAlgorithm).toBe('sha512');
      expect(v.signature.namespace).toBe('reprise');
    }
  });

  it('refuses a signature over another message as bad-signature', () => {
    const key = newKey();
    const v = verifySshSig(signSshSig(message, key.privateKey), `${message} `);
    expect(v).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('refuses another namespace (a git commit signature is not an approval)', () => {
    const key = newKey();
    const v = verifySshSig(signSshSig(message, key.privateKey, 'git'), message);
    expect(v).toMatchObject({ ok: false, reason: 'wrong-namespace' });
    if (!v.ok) expect(v.message).toContain('"git"');
  });

  it('refuses a hash algorithm other than sha512/sha256, and accepts sha256', () => {
    const key = newKey();
    expect(verifySshSig(craftSshSig(key, message, { hash: 'sha384' }), message)).toMatchObject({ ok: false, reason: 'unsupported-hash' });
    expect(verifySshSig(craftSshSig(key, message, { hash: 'md5' }), message)).toMatchObject({ ok: false, reason: 'unsupported-hash' });
    expect(verifySshSig(craftSshSig(key, message, { hash: 'sha256' }), message).ok).toBe(true);
  });

  it('refuses malformed armor and blobs', () => {
    const key = newKey();
    const good = signSshSig(message, key.privateKey);
    const blob = dearmorSshSig(good);
    const cases: unknown[] = [
      '',
      'hello',
      good.replace('BEGIN SSH SIGNATURE', 'BEGIN PGP SIGNATURE'),
      good.replace('-----END SSH SIGNATURE-----', ''),
      good.replace(/\n([A-Za-z0-9+/]{10})/, '\n$1!'),
      armorSshSig(blob.subarray(0, blob.length - 3)),
      armorSshSig(Buffer.concat([blob, Buffer.from([0])])),
      armorSshSig(Buffer.concat([Buffer.from('SSHSIX'), blob.subarray(6)])),
      craftSshSig(key, message, { version: 2 }),
      42,
      null,
    ];
    for (const c of cases) expect(verifySshSig(c, message)).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('tolerates CRLF line ends and surrounding blank lines', () => {
    const key = newKey();
    const sig = signSshSig(message, key.privateKey);
    expect(verifySshSig(`\r\n${sig.replace(/\n/g, '\r\n')}\r\n`, message).ok).toBe(true);
  });

  it('never throws on arbitrary text or mutated signatures', () => {
    const key = newKey();
    const good = signSshSig(message, key.privateKey);
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (s) => {
        const v = verifySshSig(s, message);
        expect(v.ok).toBe(false);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.array(fc.record({ at: fc.nat(), ch: fc.constantFrom('A', '/', '+', '=', '\n', 'z', '0', '-') }), { minLength: 1, maxLength: 4 }), (edits) => {
        const chars = [...good];
        for (const e of edits) chars[e.at % chars.length] = e.ch;
        const mutated = chars.join('');
        const v = verifySshSig(mutated, message);
        // A mutation either breaks the signature or left the decoded blob identical.
        if (v.ok) expect(parseSshSig(mutated).signatureBytes.equals(parseSshSig(good).signatureBytes)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('SSHSIG interoperability with OpenSSH', () => {
  it('verifies natively what ssh-keygen -Y sign made with an ssh-keygen ed25519 key', () => {
    const dir = tempDir();
    const keyFile = sshKeygen(dir, 'reviewer', 'ed25519');
    const sig = sshSign(keyFile, message);
    const v = verifySshSig(sig, message);
    expect(v.ok).toBe(true);
    const pub = parseEd25519PublicKeyLine(readFileSync(`${keyFile}.pub`, 'utf8'));
    if (v.ok) expect(v.key.fingerprint).toBe(pub.key.fingerprint);
    expect(verifySshSig(sig, `${message}x`)).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('ssh-keygen -Y verify accepts a native signature (and rejects it for another namespace)', () => {
    const dir = tempDir();
    const key = newKey('bot@ci');
    const sig = signSshSig(message, key.privateKey);
    const ok = sshVerify(dir, `bot@ci namespaces="reprise" ${key.publicKeyLine}`, 'bot@ci', message, sig);
    expect(ok.out).toContain('Good "reprise" signature');
    expect(ok.ok).toBe(true);
    expect(sshVerify(dir, `bot@ci ${key.publicKeyLine}`, 'bot@ci', message, sig, 'git').ok).toBe(false);
    expect(sshVerify(dir, `bot@ci ${key.publicKeyLine}`, 'bot@ci', `${message} `, sig).ok).toBe(false);
  });

  it('the fingerprint matches ssh-keygen -l', async () => {
    const { spawnSync } = await import('node:child_process');
    const dir = tempDir();
    const keyFile = sshKeygen(dir, 'fp', 'ed25519');
    const line = readFileSync(`${keyFile}.pub`, 'utf8');
    const l = spawnSync('ssh-keygen', ['-l', '-f', `${keyFile}.pub`], { encoding: 'utf8' }).stdout;
    expect(l).toContain(parseEd25519PublicKeyLine(line).key.fingerprint);
  });

  it('refuses ssh-rsa and ecdsa signatures without trying them', () => {
    const dir = tempDir();
    for (const type of ['rsa', 'ecdsa'] as const) {
      const sig = sshSign(sshKeygen(dir, type, type), message);
      const v = verifySshSig(sig, message);
      expect(v).toMatchObject({ ok: false, reason: 'unsupported-key' });
      if (!v.ok) expect(v.message).toMatch(type === 'rsa' ? /type ssh-rsa;/ : /type ecdsa-sha2-nistp256;/);
    }
  });
});

describe('verification never shells out', () => {
  it('no approvals module on the verification path imports child_process', () => {
    // (compiler/ modules are out of scope here: they are reached only for canonicalJson/contentHash.)
    const dir = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'executor/approvals');
    const seen = new Set<string>();
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const src = readFileSync(file, 'utf8');
      expect(src, `${file} imports child_process`).not.toMatch(/['"](node:)?child_process['"]/);
      for (const m of src.matchAll(/^import (type )?[^;]*? from '\.\/([^']+)\.js';/gms)) {
        if (!m[1]) visit(join(dir, `${m[2]}.ts`));
      }
    };
    for (const f of ['verify.ts', 'load.ts', 'evidence.ts']) visit(join(dir, f));
    expect(seen.size).toBeGreaterThan(4);
    expect([...seen].some((f) => f.endsWith('keys.ts'))).toBe(false);
  });
});
