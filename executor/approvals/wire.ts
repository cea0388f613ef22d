/**
 * The SSH wire encoding (RFC 4251 section 5) and Ed25519 public keys as SSH writes them:
 * the key blob `string "ssh-ed25519" || string key[32]`, the `ssh-ed25519 AAAA… comment` line,
 * and the `SHA256:…` fingerprint. Pure functions; no I/O.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';

export const ED25519_KEY_TYPE = 'ssh-ed25519';

/** Key types SSH knows; only `ssh-ed25519` is accepted for approvals. */
export const KNOWN_SSH_KEY_TYPES: ReadonlySet<string> = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ssh-dss',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

/** Thrown by WireReader on truncated or oversized input; callers turn it into their own refusal. */
export class WireError extends Error {
  override readonly name = 'WireError';
}

/** Reads SSH wire values from a buffer, never past its end. */
export class WireReader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  bytes(n: number): Buffer {
    if (n < 0 || n > this.remaining) throw new WireError(`truncated: need ${n} bytes, ${this.remaining} left`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  uint32(): number {
    return this.bytes(4).readUInt32BE(0);
  }

  /** An SSH `string`: uint32 length, then that many bytes. */
  string(): Buffer {
    return this.bytes(this.uint32());
  }

  /** An SSH `string` that must be printable ASCII (names, namespaces, algorithms). */
  text(what: string): string {
    const b = this.string();
    if (!/^[\x20-\x7e]*$/.test(b.toString('latin1'))) throw new WireError(`${what} is not printable ASCII`);
    return b.toString('latin1');
  }

  /** Asserts nothing follows. */
  end(what: string): void {
    if (this.remaining !== 0) throw new WireError(`${this.remaining} unexpected bytes after ${what}`);
  }
}

/** SSH `string` encoding of one value. */
export function sshString(value: Buffer | string): Buffer {
  const b = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length, 0);
  return Buffer.concat([len, b]);
}

/** An Ed25519 public key, in every form reprise needs. */
export interface Ed25519PublicKey {
  /** The 32 raw key bytes. */
  raw: Buffer;
  /** SSH key blob: `string "ssh-ed25519" || string raw`. */
  blob: Buffer;
  /** `SHA256:<base64, unpadded>` as `ssh-keygen -l` prints it. */
  fingerprint: string;
  /** node:crypto key for verification. */
  keyObject: KeyObject;
}

/** Builds the key from its 32 raw bytes. */
export function ed25519PublicKeyFromRaw(raw: Buffer): Ed25519PublicKey {
  if (raw.length !== 32) throw new WireError(`an Ed25519 public key has 32 bytes, not ${raw.length}`);
  const blob = Buffer.concat([sshString(ED25519_KEY_TYPE), sshString(raw)]);
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  } catch (e) {
    throw new WireError(`not a usable Ed25519 public key: ${(e as Error).message}`);
  }
  return { raw: Buffer.from(raw), blob, fingerprint: fingerprintOfBlob(blob), keyObject };
}

/** The public half of a node:crypto Ed25519 key (private or public). */
export function ed25519PublicKeyOf(key: KeyObject): Ed25519PublicKey {
  if (key.asymmetricKeyType !== 'ed25519') throw new WireError(`not an Ed25519 key (${key.asymmetricKeyType ?? key.type})`);
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' });
  return ed25519PublicKeyFromRaw(Buffer.from(String(jwk.x), 'base64url'));
}

/** The key type named inside a key blob (without judging it). */
export function keyTypeOfBlob(blob: Buffer): string {
  return new WireReader(blob).text('key type');
}

/**
 * Decodes an `ssh-ed25519` key blob. Throws WireError for anything else (including other key
 * types: callers check `keyTypeOfBlob` first when they want to say which type it was).
 */
export function parseEd25519Blob(blob: Buffer): Ed25519PublicKey {
  const r = new WireReader(blob);
  const type = r.text('key type');
  if (type !== ED25519_KEY_TYPE) throw new WireError(`key type ${type} is not ${ED25519_KEY_TYPE}`);
  const raw = r.string();
  r.end('the Ed25519 key');
  return ed25519PublicKeyFromRaw(raw);
}

export function fingerprintOfBlob(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** `ssh-ed25519 AAAA… comment` (the comment omitted when empty). */
export function formatPublicKeyLine(key: Ed25519PublicKey, comment?: string): string {
  const c = comment?.replace(/[\r\n]+/g, ' ').trim();
  return `${ED25519_KEY_TYPE} ${key.blob.toString('base64')}${c ? ` ${c}` : ''}`;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Strict base64 (the alphabet, correct padding); undefined when it is not. */
export function decodeBase64Strict(text: string): Buffer | undefined {
  if (text.length === 0 || text.length % 4 !== 0 || !BASE64.test(text)) return undefined;
  const buf = Buffer.from(text, 'base64');
  return buf.toString('base64') === text ? buf : undefined;
}

export type PublicKeyLine =
  | { ok: true; keyType: string; blob: Buffer; key: Ed25519PublicKey | undefined; comment: string }
  | { ok: false; message: string };

/**
 * Parses `keytype base64 [comment]`. Known non-Ed25519 types parse (key undefined) so callers
 * can say "unsupported" rather than "garbage"; the blob must name the same type as the line.
 */
export function parsePublicKeyLine(line: string): PublicKeyLine {
  const m = /^\s*(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(line);
  if (!m) return { ok: false, message: 'expected `keytype base64-key [comment]`' };
  const keyType = m[1]!;
  if (!KNOWN_SSH_KEY_TYPES.has(keyType)) return { ok: false, message: `unknown key type ${JSON.stringify(keyType.slice(0, 40))}` };
  const blob = decodeBase64Strict(m[2]!);
  if (!blob) return { ok: false, message: `the ${keyType} key is not valid base64` };
  let inner: string;
  try {
    inner = keyTypeOfBlob(blob);
  } catch {
    return { ok: false, message: `the ${keyType} key blob is malformed` };
  }
  if (inner !== keyType) return { ok: false, message: `the line says ${keyType} but the key is ${inner.slice(0, 40)}` };
  let key: Ed25519PublicKey | undefined;
  if (keyType === ED25519_KEY_TYPE) {
    try {
      key = parseEd25519Blob(blob);
    } catch (e) {
      return { ok: false, message: `the ssh-ed25519 key is malformed: ${(e as Error).message}` };
    }
  }
  return { ok: true, keyType, blob, key, comment: (m[3] ?? '').trim() };
}
