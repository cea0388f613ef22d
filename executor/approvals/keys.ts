/**
 * Keys that sign approvals.
 *
 * - A reprise key (`reprise keygen`): an Ed25519 private key as PKCS#8 PEM, file mode 0600, and
 *   `FILE.pub` = `ssh-ed25519 AAAA… comment`. Signed natively.
 * - An OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`), or a `.pub` whose private
 *   half is in ssh-agent: signed by `ssh-keygen -Y sign -n reprise`, so passphrases, agents and
 *   the key a reviewer already signs git commits with all work. Only ed25519 keys are accepted.
 *
 * Every signature is verified natively before it is returned. Only signing ever runs
 * ssh-keygen; verification (./sshsig.ts, ./verify.ts) never imports this module.
 */
import { spawn } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { REPRISE_NAMESPACE, signSshSig, verifySshSig } from './sshsig.js';
import {
  ED25519_KEY_TYPE,
  WireReader,
  decodeBase64Strict,
  ed25519PublicKeyOf,
  formatPublicKeyLine,
  keyTypeOfBlob,
  parseEd25519Blob,
  parsePublicKeyLine,
  type Ed25519PublicKey,
} from './wire.js';

export { formatPublicKeyLine, parsePublicKeyLine, type Ed25519PublicKey } from './wire.js';

/** `reprise-key@<hostname>`: the comment `reprise keygen` uses without `--comment`. */
export function defaultKeyComment(): string {
  return `reprise-key@${hostname()}`;
}

export interface GeneratedKeyPair {
  /** PKCS#8 PEM of the private key. */
  privateKeyPem: string;
  publicKey: Ed25519PublicKey;
  /** `ssh-ed25519 AAAA… comment`, ready for FILE.pub and for an allowed_signers line. */
  publicKeyLine: string;
}

export function generateKeyPair(comment: string = defaultKeyComment()): GeneratedKeyPair {
  const { privateKey } = generateKeyPairSync('ed25519');
  const publicKey = ed25519PublicKeyOf(privateKey);
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKey,
    publicKeyLine: formatPublicKeyLine(publicKey, comment),
  };
}

export interface WriteKeyPairOptions {
  /** @defaultValue defaultKeyComment() */
  comment?: string;
  /** Replace existing files. @defaultValue false */
  force?: boolean;
}

export interface WrittenKeyPair {
  privateKeyFile: string;
  publicKeyFile: string;
  publicKeyLine: string;
  fingerprint: string;
}

/** Writes FILE (0600) and FILE.pub, creating FILE's folder (0700) if needed; refuses (KEY_EXISTS, exit 2) to replace either unless `force`. */
export function writeKeyPair(file: string, opts: WriteKeyPairOptions = {}): WrittenKeyPair {
  const pubFile = `${file}.pub`;
  if (!opts.force) {
    for (const f of [file, pubFile]) {
      if (existsSync(f)) {
        throw new RepriseError('KEY_EXISTS', `${f} already exists`, { exit: ExitCode.invalidInput, hint: 'choose another --out, or pass --force to replace it (and update its line in the trust file)' });
      }
    }
  }
  const pair = generateKeyPair(opts.comment ?? defaultKeyComment());
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    if (opts.force) rmSync(file, { force: true });
    // `wx`: never write through a file (or symlink) that appeared meanwhile.
    writeFileSync(file, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
    if (opts.force) rmSync(pubFile, { force: true });
    writeFileSync(pubFile, `${pair.publicKeyLine}\n`, { mode: 0o644, flag: 'wx' });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new RepriseError(err.code === 'EEXIST' ? 'KEY_EXISTS' : 'KEY_WRITE_FAILED', `cannot write the key pair at ${file}: ${err.message}`, { exit: ExitCode.invalidInput, cause: e });
  }
  return { privateKeyFile: file, publicKeyFile: pubFile, publicKeyLine: pair.publicKeyLine, fingerprint: pair.publicKey.fingerprint };
}

/** Parses one `ssh-ed25519 AAAA… [comment]` line; throws KEY_INVALID / KEY_UNSUPPORTED (exit 2). */
export function parseEd25519PublicKeyLine(line: string, file = 'public key'): { key: Ed25519PublicKey; comment: string } {
  const r = parsePublicKeyLine(line.trim());
  if (!r.ok) throw new RepriseError('KEY_INVALID', `${file}: ${r.message}`, { exit: ExitCode.invalidInput, hint: 'expected `ssh-ed25519 AAAA… [comment]`' });
  if (!r.key) throw unsupportedKey(file, r.keyType);
  return { key: r.key, comment: r.comment };
}

/** Something that signs approval statements. */
export interface Signer {
  /** `native`: a reprise PKCS#8 key; `ssh-keygen`: an OpenSSH key file or an agent key. */
  kind: 'native' | 'ssh-keygen';
  file: string;
  publicKey: Ed25519PublicKey;
  /** Returns the armored SSHSIG (namespace `reprise`) over `message`, already verified natively. */
  sign(message: string | Buffer): Promise<string>;
}

export interface LoadSignerOptions {
  /** ssh-keygen binary for OpenSSH keys. @defaultValue 'ssh-keygen' (env REPRISE_SSH_KEYGEN) */
  sshKeygen?: string;
}

/**
 * Opens `--key FILE`: a reprise key (PKCS#8 PEM), an OpenSSH ed25519 private key, or an
 * `ssh-ed25519` public key whose private half is in ssh-agent. Anything else, and every
 * non-ed25519 key, is refused with a message saying what was found.
 */
export function loadSigner(file: string, opts: LoadSignerOptions = {}): Signer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new RepriseError('KEY_NOT_FOUND', `cannot read key ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, {
      exit: ExitCode.invalidInput,
      hint: 'pass --key with a key from `reprise keygen` or your OpenSSH ed25519 key (e.g. ~/.ssh/id_ed25519)',
    });
  }
  const sshKeygen = opts.sshKeygen ?? process.env.REPRISE_SSH_KEYGEN ?? 'ssh-keygen';
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN OPENSSH PRIVATE KEY-----')) {
    return sshKeygenSigner(file, openSshPublicKey(trimmed, file), sshKeygen);
  }
  if (trimmed.startsWith('-----BEGIN PRIVATE KEY-----')) {
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: trimmed, format: 'pem' });
    } catch (e) {
      throw new RepriseError('KEY_INVALID', `${file} is not a readable PKCS#8 private key: ${(e as Error).message}`, { exit: ExitCode.invalidInput });
    }
    if (key.asymmetricKeyType !== 'ed25519') throw unsupportedKey(file, key.asymmetricKeyType ?? 'unknown');
    return nativeSigner(file, key);
  }
  if (trimmed.startsWith('-----BEGIN ENCRYPTED PRIVATE KEY-----')) {
    throw new RepriseError('KEY_UNSUPPORTED', `${file} is an encrypted PKCS#8 key, which reprise cannot open`, {
      exit: ExitCode.invalidInput,
      hint: 'use an OpenSSH ed25519 key with a passphrase (signed through ssh-keygen), or a `reprise keygen` key kept in your secret store',
    });
  }
  const pem = /^-----BEGIN (RSA|EC|DSA) PRIVATE KEY-----/.exec(trimmed);
  if (pem) throw unsupportedKey(file, pem[1]!.toLowerCase());
  if (/^\S+ \S+/.test(trimmed) && !trimmed.includes('\n')) {
    // A public key: the private half must be in ssh-agent; ssh-keygen finds it there.
    const { key } = parseEd25519PublicKeyLine(trimmed, file);
    return sshKeygenSigner(file, key, sshKeygen);
  }
  throw new RepriseError('KEY_INVALID', `${file} is not a key reprise can sign with`, {
    exit: ExitCode.invalidInput,
    hint: 'expected a `reprise keygen` key (PKCS#8 PEM), an OpenSSH ed25519 private key, or an ssh-ed25519 public key held by ssh-agent',
  });
}

function unsupportedKey(file: string, type: string): RepriseError {
  return new RepriseError('KEY_UNSUPPORTED', `${file} is a key of type ${type}; reprise approvals are signed with ed25519 keys only`, {
    exit: ExitCode.invalidInput,
    hint: 'create one with `ssh-keygen -t ed25519` or `reprise keygen`, and add its public key to the trust file',
  });
}

/**
 * The first public key of an OpenSSH private key file. That part of the format is never
 * encrypted, so the type is known before any passphrase is asked for.
 */
function openSshPublicKey(pem: string, file: string): Ed25519PublicKey {
  const body = pem.replace(/-----(BEGIN|END) OPENSSH PRIVATE KEY-----/g, '').replace(/\s+/g, '');
  const blob = decodeBase64Strict(body);
  const invalid = (why: string): RepriseError => new RepriseError('KEY_INVALID', `${file} is not a readable OpenSSH private key (${why})`, { exit: ExitCode.invalidInput });
  if (!blob) throw invalid('bad base64');
  const auth = Buffer.from('openssh-key-v1\0', 'latin1');
  if (!blob.subarray(0, auth.length).equals(auth)) throw invalid('no openssh-key-v1 header');
  let pub: Buffer;
  try {
    const r = new WireReader(blob.subarray(auth.length));
    r.string(); // cipher
    r.string(); // kdf
    r.string(); // kdf options
    const n = r.uint32();
    if (n !== 1) throw invalid(`${n} keys in one file`);
    pub = r.string();
  } catch (e) {
    if (e instanceof RepriseError) throw e;
    throw invalid((e as Error).message);
  }
  let type: string;
  try {
    type = keyTypeOfBlob(pub);
  } catch {
    throw invalid('unreadable public key');
  }
  if (type !== ED25519_KEY_TYPE) throw unsupportedKey(file, type);
  try {
    return parseEd25519Blob(pub);
  } catch (e) {
    throw invalid((e as Error).message);
  }
}

function nativeSigner(file: string, key: KeyObject): Signer {
  const publicKey = ed25519PublicKeyOf(key);
  return {
    kind: 'native',
    file,
    publicKey,
    sign: async (message) => checked(signSshSig(message, key, REPRISE_NAMESPACE), message, publicKey, file),
  };
}

function sshKeygenSigner(file: string, publicKey: Ed25519PublicKey, sshKeygen: string): Signer {
  return {
    kind: 'ssh-keygen',
    file,
    publicKey,
    sign: async (message) => checked(await runSshKeygenSign(sshKeygen, file, message), message, publicKey, file),
  };
}

/** `ssh-keygen -Y sign -f FILE -n reprise` with the message on stdin; the passphrase prompt (if any) reaches the terminal. */
function runSshKeygenSign(sshKeygen: string, file: string, message: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(sshKeygen, ['-q', '-Y', 'sign', '-f', file, '-n', REPRISE_NAMESPACE], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    // A passphrase prompt goes to /dev/tty (or SSH_ASKPASS), not to this pipe.
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e: NodeJS.ErrnoException) => {
      reject(
        new RepriseError('SSH_KEYGEN_NOT_FOUND', `cannot run ${sshKeygen} to sign with the OpenSSH key ${file} (${e.code ?? e.message})`, {
          exit: ExitCode.invalidInput,
          hint: 'install OpenSSH 8.2 or later (ssh-keygen -Y sign), or sign with a `reprise keygen` key',
        }),
      );
    });
    child.on('close', (code) => {
      if (code === 0) return resolve(Buffer.concat(out).toString('utf8'));
      const why = Buffer.concat(err).toString('utf8').replace(/Signing data on standard input\s*/g, '').trim().split('\n').slice(-3).join(' ');
      reject(
        new RepriseError('KEY_SIGN_FAILED', `ssh-keygen could not sign with ${file}${why ? `: ${why}` : ` (exit ${code})`}`, {
          exit: ExitCode.invalidInput,
          hint: 'check the passphrase, or that the key is loaded in ssh-agent (ssh-add -l)',
        }),
      );
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(message);
  });
}

function checked(armored: string, message: string | Buffer, expected: Ed25519PublicKey, file: string): string {
  const v = verifySshSig(armored, message, REPRISE_NAMESPACE);
  if (!v.ok || !v.key.blob.equals(expected.blob)) {
    throw new RepriseError('KEY_SIGN_FAILED', `the signature made with ${file} does not verify${v.ok ? ' with that key' : `: ${v.message}`}`, {
      exit: ExitCode.internal,
      hint: 'this is a bug in reprise or in the signing tool; please report it',
    });
  }
  return armored;
}
