import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RepriseError } from '../../compiler/errors.js';
import { loadSigner, parseEd25519PublicKeyLine, writeKeyPair } from '../../executor/approvals/keys.js';
import { verifySshSig } from '../../executor/approvals/sshsig.js';
import { sshKeygen, sshVerify, tempDir } from './helpers.js';

function refusal(fn: () => unknown): RepriseError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RepriseError);
    return e as RepriseError;
  }
  throw new Error('expected a refusal');
}

describe('reprise keys', () => {
  it('writes a 0600 PKCS#8 key and an ssh-ed25519 .pub, and signs natively', async () => {
    const dir = tempDir();
    const file = join(dir, 'ci.key');
    const w = writeKeyPair(file, { comment: 'ci-bot@example.com' });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const pub = readFileSync(`${file}.pub`, 'utf8');
    expect(pub).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/=]+ ci-bot@example\.com\n$/);
    expect(pub.trim()).toBe(w.publicKeyLine);
    const parsed = parseEd25519PublicKeyLine(pub);
    expect(parsed.comment).toBe('ci-bot@example.com');
    expect(parsed.key.fingerprint).toBe(w.fingerprint);
    const signer = loadSigner(file);
    expect(signer.kind).toBe('native');
    const sig = await signer.sign('statement');
    const v = verifySshSig(sig, 'statement');
    expect(v.ok && v.key.fingerprint).toBe(w.fingerprint);
    // and OpenSSH agrees
    expect(sshVerify(dir, `ci-bot@example.com ${w.publicKeyLine}`, 'ci-bot@example.com', 'statement', sig).ok).toBe(true);
  });

  it('defaults the comment to reprise-key@<hostname>', () => {
    const file = join(tempDir(), 'k');
    expect(writeKeyPair(file).publicKeyLine.endsWith(` reprise-key@${hostname()}`)).toBe(true);
  });

  it('refuses to overwrite a key or its .pub unless forced', () => {
    const dir = tempDir();
    const file = join(dir, 'k');
    const first = writeKeyPair(file);
    expect(refusal(() => writeKeyPair(file)).code).toBe('KEY_EXISTS');
    writeFileSync(join(dir, 'only.pub'), 'x');
    expect(refusal(() => writeKeyPair(join(dir, 'only'))).code).toBe('KEY_EXISTS');
    const second = writeKeyPair(file, { force: true });
    expect(second.fingerprint).not.toBe(first.fingerprint);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('signs with an OpenSSH ed25519 key through ssh-keygen', async () => {
    const dir = tempDir();
    const key = sshKeygen(dir, 'id_ed25519', 'ed25519');
    const signer = loadSigner(key);
    expect(signer.kind).toBe('ssh-keygen');
    expect(signer.publicKey.fingerprint).toBe(parseEd25519PublicKeyLine(readFileSync(`${key}.pub`, 'utf8')).key.fingerprint);
    expect(verifySshSig(await signer.sign('m'), 'm').ok).toBe(true);
  });

  it('signs with a key held by ssh-agent, given its public key', async () => {
    const { spawnSync } = await import('node:child_process');
    const dir = tempDir();
    const key = sshKeygen(dir, 'agent_key', 'ed25519', 'only-the-agent-knows');
    const agent = spawnSync('ssh-agent', ['-s', '-a', join(dir, 'agent.sock')], { encoding: 'utf8' });
    const pid = Number(/SSH_AGENT_PID=(\d+)/.exec(agent.stdout)?.[1]);
    expect(pid).toBeGreaterThan(0);
    const saved = process.env.SSH_AUTH_SOCK;
    process.env.SSH_AUTH_SOCK = join(dir, 'agent.sock');
    try {
      const askpass = join(dir, 'askpass.sh');
      writeFileSync(askpass, "#!/bin/sh\necho only-the-agent-knows\n", { mode: 0o755 });
      const add = spawnSync('ssh-add', ['-q', key], { encoding: 'utf8', env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force' } });
      expect(add.status, add.stderr).toBe(0);
      const signer = loadSigner(`${key}.pub`);
      expect(signer.kind).toBe('ssh-keygen');
      const v = verifySshSig(await signer.sign('m'), 'm');
      expect(v.ok && v.key.fingerprint).toBe(signer.publicKey.fingerprint);
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = saved;
      process.kill(pid);
    }
  });

  it('reports a wrong passphrase as KEY_SIGN_FAILED', async () => {
    const dir = tempDir();
    const key = sshKeygen(dir, 'locked', 'ed25519', 'right');
    const askpass = join(dir, 'askpass.sh');
    writeFileSync(askpass, '#!/bin/sh\necho wrong\n', { mode: 0o755 });
    const saved = { a: process.env.SSH_ASKPASS, r: process.env.SSH_ASKPASS_REQUIRE };
    process.env.SSH_ASKPASS = askpass;
    process.env.SSH_ASKPASS_REQUIRE = 'force';
    try {
      await expect(loadSigner(key).sign('m')).rejects.toMatchObject({ code: 'KEY_SIGN_FAILED', exit: 2 });
    } finally {
      if (saved.a === undefined) delete process.env.SSH_ASKPASS;
      else process.env.SSH_ASKPASS = saved.a;
      if (saved.r === undefined) delete process.env.SSH_ASKPASS_REQUIRE;
      else process.env.SSH_ASKPASS_REQUIRE = saved.r;
    }
  });

  it('refuses non-ed25519 OpenSSH keys with a clear error, before any passphrase prompt', () => {
    const dir = tempDir();
    for (const type of ['rsa', 'ecdsa'] as const) {
      const e = refusal(() => loadSigner(sshKeygen(dir, `id_${type}`, type, 'secret')));
      expect(e.code).toBe('KEY_UNSUPPORTED');
      expect(e.message).toMatch(type === 'rsa' ? /is a key of type ssh-rsa; reprise approvals are signed with ed25519 keys only/ : /ecdsa-sha2-nistp256/);
    }
  });

  it('refuses missing files, garbage, and non-ed25519 PEM keys', async () => {
    const dir = tempDir();
    expect(refusal(() => loadSigner(join(dir, 'nope'))).code).toBe('KEY_NOT_FOUND');
    writeFileSync(join(dir, 'junk'), 'hello world\nmore');
    expect(refusal(() => loadSigner(join(dir, 'junk'))).code).toBe('KEY_INVALID');
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(join(dir, 'ec.pem'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
    expect(refusal(() => loadSigner(join(dir, 'ec.pem'))).code).toBe('KEY_UNSUPPORTED');
    writeFileSync(join(dir, 'broken'), '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n');
    expect(refusal(() => loadSigner(join(dir, 'broken'))).code).toBe('KEY_INVALID');
  });

  it('parses ssh-ed25519 public key lines and refuses others', () => {
    const dir = tempDir();
    const rsa = readFileSync(`${sshKeygen(dir, 'r', 'rsa')}.pub`, 'utf8');
    expect(refusal(() => parseEd25519PublicKeyLine(rsa)).code).toBe('KEY_UNSUPPORTED');
    expect(refusal(() => parseEd25519PublicKeyLine('ssh-ed25519 AAAA')).code).toBe('KEY_INVALID');
    expect(refusal(() => parseEd25519PublicKeyLine('hello')).code).toBe('KEY_INVALID');
  });
});
