/**
 * OpenSSH signatures (PROTOCOL.sshsig), Ed25519 only, with node:crypto. This is what
 * `ssh-keygen -Y sign` writes and `ssh-keygen -Y verify` checks; reprise signs and verifies the
 * same bytes natively, so verification never needs ssh-keygen.
 *
 *   blob        = "SSHSIG" || uint32 1 || string publickey || string namespace || string reserved
 *                 || string hash_algorithm || string signature
 *   signed data = "SSHSIG" || string namespace || string reserved || string hash_algorithm
 *                 || string H(message)
 *
 * armored between `-----BEGIN SSH SIGNATURE-----` and `-----END SSH SIGNATURE-----`, base64
 * wrapped at 70 columns.
 */
import { createHash, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import {
  ED25519_KEY_TYPE,
  WireError,
  WireReader,
  decodeBase64Strict,
  ed25519PublicKeyOf,
  keyTypeOfBlob,
  parseEd25519Blob,
  sshString,
  type Ed25519PublicKey,
} from './wire.js';

/** The namespace reprise signs and accepts: a signature made for git commits (`git`) or files (`file`) is not an approval. */
export const REPRISE_NAMESPACE = 'reprise';
/** The hash reprise signs with (ssh-keygen's default too). */
export const SSHSIG_HASH = 'sha512';
/** Hashes PROTOCOL.sshsig allows; a signature using another is refused. */
export const SSHSIG_HASHES: ReadonlySet<string> = new Set(['sha256', 'sha512']);

const MAGIC = Buffer.from('SSHSIG', 'latin1');
const VERSION = 1;
const BEGIN = '-----BEGIN SSH SIGNATURE-----';
const END = '-----END SSH SIGNATURE-----';
/** Far above any real signature; keeps hostile input cheap to reject. */
const MAX_ARMOR_CHARS = 64 * 1024;

/** A decoded SSHSIG blob, before any judgement about its key, namespace or hash. */
export interface SshSignature {
  version: number;
  /** Key type named by the public key blob (`ssh-ed25519`, `ssh-rsa`, …). */
  keyType: string;
  publicKeyBlob: Buffer;
  namespace: string;
  reserved: Buffer;
  hashAlgorithm: string;
  /** Signature algorithm named inside the signature blob. */
  signatureType: string;
  /** The raw signature bytes (64 for Ed25519). */
  signatureBytes: Buffer;
}

/** Why a signature is not accepted; each maps to its own approval refusal. */
export type SshSigFailure = 'malformed' | 'unsupported-key' | 'wrong-namespace' | 'unsupported-hash' | 'bad-signature';

export type SshSigVerification =
  | { ok: true; key: Ed25519PublicKey; signature: SshSignature }
  | { ok: false; reason: SshSigFailure; message: string; signature?: SshSignature };

/** Thrown by parseSshSig / dearmorSshSig for text that is not an SSHSIG at all. */
export class SshSigFormatError extends Error {
  override readonly name = 'SshSigFormatError';
}

export function armorSshSig(blob: Buffer): string {
  const b64 = blob.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 70) lines.push(b64.slice(i, i + 70));
  return `${BEGIN}\n${lines.join('\n')}\n${END}\n`;
}

/** The blob inside the armor. Throws SshSigFormatError. */
export function dearmorSshSig(text: string): Buffer {
  if (typeof text !== 'string') throw new SshSigFormatError('the signature is not text');
  if (text.length > MAX_ARMOR_CHARS) throw new SshSigFormatError(`the signature is ${text.length} characters long; an SSH signature is under 1 KiB`);
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  while (lines.length && lines[0] === '') lines.shift();
  if (lines[0] !== BEGIN) throw new SshSigFormatError(`the signature does not start with ${BEGIN}`);
  if (lines[lines.length - 1] !== END || lines.length < 3) throw new SshSigFormatError(`the signature does not end with ${END}`);
  const body = lines.slice(1, -1).join('');
  const blob = decodeBase64Strict(body);
  if (!blob) throw new SshSigFormatError('the armored signature is not valid base64');
  return blob;
}

/** Decodes an SSHSIG blob. Throws SshSigFormatError for a structurally broken one. */
export function parseSshSigBlob(blob: Buffer): SshSignature {
  try {
    const r = new WireReader(blob);
    if (!r.bytes(MAGIC.length).equals(MAGIC)) throw new SshSigFormatError('the signature blob does not start with SSHSIG');
    const version = r.uint32();
    if (version !== VERSION) throw new SshSigFormatError(`SSHSIG version ${version} is not supported (only ${VERSION})`);
    const publicKeyBlob = r.string();
    const namespace = r.text('namespace');
    const reserved = r.string();
    const hashAlgorithm = r.text('hash algorithm');
    const signatureBlob = r.string();
    r.end('the signature');
    const keyType = keyTypeOfBlob(publicKeyBlob);
    const s = new WireReader(signatureBlob);
    const signatureType = s.text('signature type');
    const signatureBytes = s.string();
    s.end('the signature bytes');
    return { version, keyType, publicKeyBlob, namespace, reserved, hashAlgorithm, signatureType, signatureBytes };
  } catch (e) {
    if (e instanceof SshSigFormatError) throw e;
    if (e instanceof WireError) throw new SshSigFormatError(`the signature blob is malformed: ${e.message}`);
    throw e;
  }
}

/** Dearmors and decodes. Throws SshSigFormatError. */
export function parseSshSig(armored: string): SshSignature {
  return parseSshSigBlob(dearmorSshSig(armored));
}

function hashMessage(alg: string, message: Buffer | string): Buffer {
  return createHash(alg).update(message).digest();
}

/** The bytes the key actually signs. */
export function sshSigSignedData(namespace: string, hashAlgorithm: string, message: Buffer | string, reserved: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([MAGIC, sshString(namespace), sshString(reserved), sshString(hashAlgorithm), sshString(hashMessage(hashAlgorithm, message))]);
}

/** Signs `message` with an Ed25519 private key; returns the armored signature (what `ssh-keygen -Y sign` would write). */
export function signSshSig(message: Buffer | string, privateKey: KeyObject, namespace: string = REPRISE_NAMESPACE): string {
  const pub = ed25519PublicKeyOf(privateKey);
  const sig = cryptoSign(null, sshSigSignedData(namespace, SSHSIG_HASH, message), privateKey);
  const blob = Buffer.concat([
    MAGIC,
    Buffer.from([0, 0, 0, VERSION]),
    sshString(pub.blob),
    sshString(namespace),
    sshString(Buffer.alloc(0)),
    sshString(SSHSIG_HASH),
    sshString(Buffer.concat([sshString(ED25519_KEY_TYPE), sshString(sig)])),
  ]);
  return armorSshSig(blob);
}

/**
 * Verifies an armored SSHSIG over `message`, natively. Never throws for bad input: every
 * problem is a distinct `reason`. The key is the one embedded in the signature; whether it is
 * trusted is the caller's question (allowed_signers).
 */
export function verifySshSig(armored: unknown, message: Buffer | string, namespace: string = REPRISE_NAMESPACE): SshSigVerification {
  let signature: SshSignature;
  try {
    signature = parseSshSig(armored as string);
  } catch (e) {
    if (e instanceof SshSigFormatError) return { ok: false, reason: 'malformed', message: e.message };
    throw e;
  }
  if (signature.keyType !== ED25519_KEY_TYPE) {
    return {
      ok: false,
      reason: 'unsupported-key',
      message: `the signature was made with a key of type ${printable(signature.keyType)}; reprise accepts only ssh-ed25519 keys`,
      signature,
    };
  }
  if (signature.namespace !== namespace) {
    return {
      ok: false,
      reason: 'wrong-namespace',
      message: `the signature is for namespace ${JSON.stringify(signature.namespace)}, not ${JSON.stringify(namespace)}`,
      signature,
    };
  }
  if (!SSHSIG_HASHES.has(signature.hashAlgorithm)) {
    return { ok: false, reason: 'unsupported-hash', message: `hash algorithm ${JSON.stringify(signature.hashAlgorithm)} is not supported (sha512 or sha256)`, signature };
  }
  let key: Ed25519PublicKey;
  try {
    key = parseEd25519Blob(signature.publicKeyBlob);
  } catch (e) {
    return { ok: false, reason: 'malformed', message: `the signature's public key is malformed: ${(e as Error).message}`, signature };
  }
  if (signature.signatureType !== ED25519_KEY_TYPE || signature.signatureBytes.length !== 64) {
    return { ok: false, reason: 'malformed', message: `the signature blob is not an ssh-ed25519 signature (${printable(signature.signatureType)}, ${signature.signatureBytes.length} bytes)`, signature };
  }
  const data = sshSigSignedData(signature.namespace, signature.hashAlgorithm, message, signature.reserved);
  let valid = false;
  try {
    valid = cryptoVerify(null, data, key.keyObject, signature.signatureBytes);
  } catch {
    valid = false;
  }
  if (!valid) return { ok: false, reason: 'bad-signature', message: `the signature does not verify with key ${key.fingerprint}`, signature };
  return { ok: true, key, signature };
}

function printable(s: string): string {
  return /^[A-Za-z0-9@._-]{1,60}$/.test(s) ? s : JSON.stringify(s.slice(0, 60));
}
