/**
 * Trust: git's `allowed_signers` file (ssh-keygen(1), "ALLOWED SIGNERS"), one key per line:
 *
 *   principals [options] keytype base64-key [comment]
 *
 * `principals` is an ssh pattern list (`*` and `?` wildcards, `!` negation); options are
 * `namespaces="a,b"`, `valid-after=`/`valid-before=` (`YYYYMMDD[HHMM[SS]][Z]`, local time unless
 * `Z`, as ssh reads them) and `cert-authority`, which reprise does not support and refuses.
 * Parsing collects every bad line and throws one TRUST_FILE_INVALID naming them; it never
 * crashes on arbitrary bytes. Pure functions; reading the file is in ./load.ts.
 */
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { KNOWN_SSH_KEY_TYPES, parsePublicKeyLine, type Ed25519PublicKey } from './wire.js';

/** One trusted key and what it may sign. */
export interface AllowedSigner {
  /** 1-based line in the trust file. */
  line: number;
  /** Principal patterns as written (`alice@example.com`, `*@ops.example.com`, `!mallory@example.com`). */
  principals: string[];
  keyType: string;
  /** SSH key blob (compared byte for byte with the signature's key). */
  blob: Buffer;
  /** The key, when it is `ssh-ed25519`; entries of other types are kept but can never verify. */
  key: Ed25519PublicKey | undefined;
  /** `namespaces=` patterns; undefined means every namespace. */
  namespaces: string[] | undefined;
  /** The key is trusted only from this instant (`valid-after`). */
  validAfter: Date | undefined;
  /** The key is trusted only before this instant (`valid-before`). */
  validBefore: Date | undefined;
  comment: string;
}

/** A parsed trust file. */
export interface AllowedSigners {
  /** Where it came from, for messages. */
  file: string;
  entries: AllowedSigner[];
}

export interface TrustProblem {
  line: number;
  message: string;
}

const MAX_TRUST_BYTES = 4 * 1024 * 1024;

/** Parses an allowed_signers file. Throws RepriseError TRUST_FILE_INVALID (exit 2) listing every bad line. */
export function parseAllowedSigners(input: string | Uint8Array, file = 'allowed_signers'): AllowedSigners {
  const fail = (problems: TrustProblem[], code = 'TRUST_FILE_INVALID'): never => {
    const shown = problems.slice(0, 5).map((p) => (p.line ? `line ${p.line}: ${p.message}` : p.message));
    const more = problems.length > 5 ? ` (and ${problems.length - 5} more)` : '';
    throw new RepriseError(code, `trust file ${file}: ${shown.join('; ')}${more}`, {
      exit: ExitCode.invalidInput,
      hint:
        code === 'TRUST_CERT_AUTHORITY_UNSUPPORTED'
          ? 'reprise trusts keys, not SSH certificate authorities: list each approver key on its own line'
          : 'each line is `principals [options] ssh-ed25519 AAAA… [comment]` (git allowed_signers format); see docs/approvals.md',
      details: { file, problems },
    });
  };
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    if (input.length > MAX_TRUST_BYTES) fail([{ line: 0, message: `larger than ${MAX_TRUST_BYTES} bytes` }]);
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      return fail([{ line: 0, message: 'not UTF-8 text' }]);
    }
  }
  if (text.length > MAX_TRUST_BYTES) fail([{ line: 0, message: `larger than ${MAX_TRUST_BYTES} characters` }]);
  const entries: AllowedSigner[] = [];
  const problems: TrustProblem[] = [];
  const certLines: TrustProblem[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const r = parseLine(trimmed, line);
    if ('entry' in r) entries.push(r.entry);
    else if (r.certAuthority) certLines.push({ line, message: 'cert-authority is not supported' });
    else problems.push({ line, message: r.message });
  });
  if (certLines.length && !problems.length) fail(certLines, 'TRUST_CERT_AUTHORITY_UNSUPPORTED');
  if (problems.length || certLines.length) fail([...problems, ...certLines].sort((a, b) => a.line - b.line));
  return { file, entries };
}

type LineResult = { entry: AllowedSigner } | { message: string; certAuthority?: boolean };

function parseLine(text: string, line: number): LineResult {
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(text)) return { message: 'contains control characters' };
  const cur = { s: text };
  const principalsTok = nextToken(cur);
  if ('error' in principalsTok) return { message: `principals: ${principalsTok.error}` };
  if (KNOWN_SSH_KEY_TYPES.has(principalsTok.value)) return { message: 'the line starts with the key type: principals come first (`alice@example.com ssh-ed25519 AAAA…`)' };
  let written = principalsTok.value;
  if (written.length >= 2 && written.startsWith('"') && written.endsWith('"')) written = written.slice(1, -1);
  if (written.includes('"')) return { message: 'principals: misplaced double quote' };
  const principals = written.split(',');
  if (principals.some((p) => p === '' || p === '!')) return { message: `empty principal in ${JSON.stringify(written.slice(0, 80))}` };
  let next = nextToken(cur);
  if ('error' in next) return { message: next.error };
  if (next.value === '') return { message: 'expected `principals [options] keytype base64-key`, found only one field' };
  let namespaces: string[] | undefined;
  let validAfter: Date | undefined;
  let validBefore: Date | undefined;
  if (!KNOWN_SSH_KEY_TYPES.has(next.value)) {
    const opts = parseOptions(next.value);
    if ('message' in opts) return opts;
    ({ namespaces, validAfter, validBefore } = opts);
    next = nextToken(cur);
    if ('error' in next) return { message: next.error };
    if (next.value === '') return { message: 'missing key type and key after the options' };
  }
  const key = parsePublicKeyLine(`${next.value} ${cur.s}`);
  if (!key.ok) return { message: key.message };
  return {
    entry: { line, principals, keyType: key.keyType, blob: key.blob, key: key.key, namespaces, validAfter, validBefore, comment: key.comment },
  };
}

/** Reads one whitespace-delimited token; double quotes may enclose spaces (and are removed). */
function nextToken(cur: { s: string }): { value: string } | { error: string } {
  const s = cur.s.replace(/^\s+/, '');
  let value = '';
  let quoted = false;
  let i = 0;
  for (; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"') { quoted = !quoted; value += c; continue; }
    if (!quoted && /\s/.test(c)) break;
    value += c;
  }
  if (quoted) return { error: 'unterminated double quote' };
  cur.s = s.slice(i);
  return { value };
}

interface Options {
  namespaces: string[] | undefined;
  validAfter: Date | undefined;
  validBefore: Date | undefined;
}

/** `opt[=value],…` with values optionally double-quoted (commas inside quotes belong to the value). */
function parseOptions(text: string): Options | { message: string; certAuthority?: boolean } {
  const out: Options = { namespaces: undefined, validAfter: undefined, validBefore: undefined };
  const seen = new Set<string>();
  let i = 0;
  while (i < text.length) {
    const nameMatch = /^[A-Za-z-]+/.exec(text.slice(i));
    if (!nameMatch) return { message: `options: cannot read ${JSON.stringify(text.slice(i, i + 40))} (is the key type misspelled?)` };
    const name = nameMatch[0].toLowerCase();
    i += nameMatch[0].length;
    let value: string | undefined;
    if (text[i] === '=') {
      i++;
      if (text[i] === '"') {
        const end = text.indexOf('"', i + 1);
        if (end < 0) return { message: `option ${name}: unterminated double quote` };
        value = text.slice(i + 1, end);
        i = end + 1;
      } else {
        const end = text.indexOf(',', i);
        value = text.slice(i, end < 0 ? text.length : end);
        if (value.includes('"')) return { message: `option ${name}: misplaced double quote` };
        i = end < 0 ? text.length : end;
      }
    }
    if (i < text.length) {
      if (text[i] !== ',') return { message: `options: expected a comma after ${name}` };
      i++;
      if (i === text.length) return { message: 'options: trailing comma' };
    }
    if (seen.has(name)) return { message: `option ${name} is given twice` };
    seen.add(name);
    switch (name) {
      case 'cert-authority':
        return { message: 'cert-authority is not supported', certAuthority: true };
      case 'namespaces': {
        if (value === undefined || value === '') return { message: 'namespaces= needs a value, e.g. namespaces="reprise"' };
        const list = value.split(',');
        if (list.some((n) => n === '' || n === '!')) return { message: `namespaces=: empty namespace in ${JSON.stringify(value)}` };
        out.namespaces = list;
        break;
      }
      case 'valid-after':
      case 'valid-before': {
        if (value === undefined) return { message: `${name}= needs a timestamp (YYYYMMDD[HHMM[SS]][Z])` };
        const t = parseSshTimestamp(value);
        if (!t) return { message: `${name}=${JSON.stringify(value.slice(0, 40))} is not a timestamp (YYYYMMDD[HHMM[SS]][Z])` };
        if (name === 'valid-after') out.validAfter = t;
        else out.validBefore = t;
        break;
      }
      default:
        return { message: `unknown option ${JSON.stringify(name.slice(0, 40))} (reprise knows namespaces=, valid-after=, valid-before=)` };
    }
  }
  return out;
}

/**
 * `YYYYMMDD[Z]` or `YYYYMMDDHHMM[SS][Z]`: UTC with `Z`, else the system's local time (as ssh).
 * Undefined when not a real date.
 */
export function parseSshTimestamp(text: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(Z?)$/.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4] ?? '0', m[5] ?? '0', m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
  const date = m[7] ? new Date(Date.UTC(y, mo - 1, d, h, mi, s)) : new Date(y, mo - 1, d, h, mi, s);
  const back = m[7]
    ? [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds()]
    : [date.getFullYear(), date.getMonth() + 1, date.getDate(), date.getHours(), date.getMinutes(), date.getSeconds()];
  if (back.join() !== [y, mo, d, h, mi, s].join()) return undefined;
  return date;
}

/** ssh's `match_pattern`: `*` any run of characters, `?` any one; case-sensitive. Linear-time. */
export function matchPattern(value: string, pattern: string): boolean {
  let v = 0;
  let p = 0;
  let star = -1;
  let mark = 0;
  while (v < value.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === value[v])) {
      v++;
      p++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = v;
    } else if (star >= 0) {
      p = star + 1;
      v = ++mark;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * ssh's `match_pattern_list`: true when some positive pattern matches and no negated (`!`)
 * pattern does (a matching negation wins).
 */
export function matchPatternList(value: string, patterns: readonly string[]): boolean {
  let matched = false;
  for (const pat of patterns) {
    if (pat.startsWith('!')) {
      if (matchPattern(value, pat.slice(1))) return false;
    } else if (matchPattern(value, pat)) matched = true;
  }
  return matched;
}

/** True when a principal pattern list names `value` literally (no wildcard), for author checks. */
export function namesLiterally(value: string, patterns: readonly string[], caseInsensitive = false): boolean {
  const norm = (s: string): string => (caseInsensitive ? s.toLowerCase() : s);
  return patterns.some((p) => !/[*?!]/.test(p) && norm(p) === norm(value));
}

/** Entries whose key is exactly this key blob. */
export function entriesForKey(trust: AllowedSigners, blob: Buffer): AllowedSigner[] {
  return trust.entries.filter((e) => e.blob.equals(blob));
}
