import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RepriseError } from '../../compiler/errors.js';
import { matchPattern, matchPatternList, parseAllowedSigners, parseSshTimestamp } from '../../executor/approvals/allowed-signers.js';
import { newKey } from './helpers.js';

function trustError(text: string | Uint8Array): RepriseError {
  try {
    parseAllowedSigners(text, 'trust');
  } catch (e) {
    expect(e).toBeInstanceOf(RepriseError);
    return e as RepriseError;
  }
  throw new Error('expected a refusal');
}

describe('allowed_signers parsing', () => {
  it('reads principals, options, key and comment; skips comments and blank lines', () => {
    const a = newKey();
    const b = newKey();
    const [aType, aB64] = a.publicKeyLine.split(' ');
    const text = [
      '# reviewers',
      '',
      `alice@example.com ${aType} ${aB64} alice laptop`,
      `   "bob@example.com,*@ops.example.com,!mallory@ops.example.com" namespaces="reprise,git",valid-after="20260101",VALID-BEFORE=20270101120000Z ${b.publicKeyLine}`,
      '\t# indented comment',
    ].join('\r\n');
    const t = parseAllowedSigners(text, 'trust');
    expect(t.entries).toHaveLength(2);
    const [first, second] = t.entries;
    expect(first).toMatchObject({ line: 3, principals: ['alice@example.com'], keyType: 'ssh-ed25519', namespaces: undefined, comment: 'alice laptop' });
    expect(first!.key!.blob.equals(a.publicKey.blob)).toBe(true);
    expect(second).toMatchObject({ line: 4, principals: ['bob@example.com', '*@ops.example.com', '!mallory@ops.example.com'], namespaces: ['reprise', 'git'] });
    expect(second!.validAfter!.getTime()).toBe(new Date(2026, 0, 1).getTime());
    expect(second!.validBefore!.toISOString()).toBe('2027-01-01T12:00:00.000Z');
  });

  it('keeps non-ed25519 entries (they can never verify an approval)', () => {
    const rsa = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDJ';
    // A short but structurally typed blob: "ssh-rsa" then junk is still an ssh-rsa key line.
    const t = parseAllowedSigners(`carol@example.com ${rsa.split(' ')[0]} ${Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from('ssh-rsa'), Buffer.alloc(8)]).toString('base64')}`);
    expect(t.entries[0]).toMatchObject({ keyType: 'ssh-rsa', key: undefined });
  });

  it('names the line of every bad line, all at once', () => {
    const a = newKey();
    const text = [
      `alice@example.com ${a.publicKeyLine}`,
      'this is not a trust line',
      `bob@example.com namespaces="reprise ${a.publicKeyLine}`,
      `carol@example.com ssh-ed25519 !!!notbase64`,
      `dan@example.com unknown-option=1 ${a.publicKeyLine}`,
      `erin@example.com valid-after=2026-01-01 ${a.publicKeyLine}`,
      `frank@example.com valid-before=20261301 ${a.publicKeyLine}`,
      'lonely',
      a.publicKeyLine,
    ].join('\n');
    const e = trustError(text);
    expect(e.code).toBe('TRUST_FILE_INVALID');
    expect(e.exit).toBe(2);
    expect(e.message).toContain('line 2:');
    expect(e.message).toContain('line 3:');
    const problems = (e.details as { problems: Array<{ line: number }> }).problems;
    expect(problems.map((p) => p.line)).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
    expect(problems.at(-1)).toMatchObject({ message: expect.stringContaining('principals come first') });
  });

  it('refuses a key line whose blob is another type than it says', () => {
    const a = newKey();
    const b64 = a.publicKeyLine.split(' ')[1];
    expect(trustError(`alice@example.com ssh-rsa ${b64}`).message).toContain('line 1: the line says ssh-rsa but the key is ssh-ed25519');
  });

  it('refuses cert-authority, saying it is not supported', () => {
    const a = newKey();
    const e = trustError(`*@example.com cert-authority ${a.publicKeyLine}`);
    expect(e.code).toBe('TRUST_CERT_AUTHORITY_UNSUPPORTED');
    expect(e.message).toContain('line 1: cert-authority is not supported');
    expect(e.hint).toMatch(/not SSH certificate authorities/);
  });

  it('refuses bytes that are not UTF-8', () => {
    expect(trustError(Uint8Array.from([0xff, 0xfe, 0x41])).message).toContain('not UTF-8');
  });

  it('never crashes on arbitrary bytes or token soup: a RepriseError or a parse', () => {
    const a = newKey();
    const [type, b64] = a.publicKeyLine.split(' ') as [string, string];
    const token = fc.constantFrom(
      'alice@example.com', '*', '!', '?', ',', '"', '=', 'namespaces=', 'namespaces="reprise"', 'valid-after=', 'valid-before="20260101Z"',
      'cert-authority', type, b64, b64.slice(0, 10), 'ssh-rsa', '#', ' ', '\t', '\n', 'AAAA', '\u0000', 'é',
    );
    const check = (input: string | Uint8Array): void => {
      try {
        const t = parseAllowedSigners(input, 'fuzz');
        for (const e of t.entries) expect(e.line).toBeGreaterThan(0);
      } catch (e) {
        expect(e).toBeInstanceOf(RepriseError);
        expect((e as RepriseError).code).toMatch(/^TRUST_/);
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => check(b)), { numRuns: 300 });
    fc.assert(fc.property(fc.array(token, { maxLength: 40 }), (ts) => check(ts.join(' '))), { numRuns: 400 });
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => check(s)), { numRuns: 300 });
  });
});

describe('ssh pattern lists', () => {
  it('matches * and ? like ssh', () => {
    expect(matchPattern('alice@example.com', '*@example.com')).toBe(true);
    expect(matchPattern('alice@example.com', 'alic?@example.com')).toBe(true);
    expect(matchPattern('alice@example.com', '?@example.com')).toBe(false);
    expect(matchPattern('alice@example.com', 'Alice@example.com')).toBe(false);
    expect(matchPattern('', '*')).toBe(true);
    expect(matchPattern('a'.repeat(5000), `${'*a'.repeat(50)}b`)).toBe(false);
  });

  it('a matching negation wins; only negations never match', () => {
    const list = ['*@example.com', '!mallory@example.com'];
    expect(matchPatternList('alice@example.com', list)).toBe(true);
    expect(matchPatternList('mallory@example.com', list)).toBe(false);
    expect(matchPatternList('alice@other.com', list)).toBe(false);
    expect(matchPatternList('alice@example.com', ['!bob@example.com'])).toBe(false);
  });
});

describe('timestamps', () => {
  it('reads YYYYMMDD[HHMM[SS]][Z]', () => {
    expect(parseSshTimestamp('20260102Z')!.toISOString()).toBe('2026-01-02T00:00:00.000Z');
    expect(parseSshTimestamp('202601021304Z')!.toISOString()).toBe('2026-01-02T13:04:00.000Z');
    expect(parseSshTimestamp('20260102130405Z')!.toISOString()).toBe('2026-01-02T13:04:05.000Z');
    expect(parseSshTimestamp('20260102')!.getTime()).toBe(new Date(2026, 0, 2).getTime());
    for (const bad of ['2026010', '20260230', '20261301', '2026010213', '20260102250000Z', 'tomorrow', '']) expect(parseSshTimestamp(bad)).toBeUndefined();
  });
});
