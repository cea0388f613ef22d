/**
 * Canonicalization (RFC 8785) over random JSON values: the canonical form does not depend on key
 * order or on a JSON round trip, and a manifest is accepted only as exactly its canonical bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, contentHash, MANIFEST_KIND, parseManifestBytes } from '../../compiler/manifest.js';
import { RepriseError } from '../../compiler/errors.js';

/** The same value with every object's keys in a permuted order (own data properties, `__proto__` included). */
function permute(v: unknown, seed: number): unknown {
  if (Array.isArray(v)) return v.map((x, i) => permute(x, seed + i));
  if (v === null || typeof v !== 'object') return v;
  const entries = Object.entries(v as Record<string, unknown>);
  let s = seed >>> 0;
  for (let i = entries.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  }
  return Object.fromEntries(entries.map(([k, x], i) => [k, permute(x, seed + 31 * i)]));
}

/** JSON text with the keys of the top-level object in the given order (not canonical unless sorted). */
function stringifyInOrder(obj: Record<string, unknown>, keys: string[]): string {
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

// 'binary' strings include lone surrogates and every plane, where escaping rules differ most.
const json = fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' }));
const manifestBody = fc.dictionary(fc.string({ minLength: 1, maxLength: 8, unit: 'binary' }).filter((k) => k !== 'kind' && k !== 'hash'), json, { minKeys: 1, maxKeys: 6 });

function manifestOf(body: Record<string, unknown>): Record<string, unknown> {
  const withKind = { ...body, kind: MANIFEST_KIND };
  return { ...withKind, hash: contentHash(withKind) };
}

describe('canonical JSON', () => {
  it('is invariant under key permutation', () => {
    fc.assert(fc.property(json, fc.integer(), (v, seed) => canonicalJson(permute(v, seed)) === canonicalJson(v)), { numRuns: 500 });
  });

  it('is invariant under a JSON round trip, and is itself JSON of the same value', () => {
    fc.assert(
      fc.property(json, (v) => {
        const c = canonicalJson(v);
        expect(canonicalJson(JSON.parse(JSON.stringify(v)))).toBe(c);
        expect(canonicalJson(JSON.parse(c))).toBe(c);
        expect(JSON.parse(c)).toEqual(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 500 },
    );
  });

  it('sorts keys by UTF-16 code units and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: [1, { d: true, c: null }], é: 'x', Z: 2 })).toBe('{"Z":2,"a":[1,{"c":null,"d":true}],"b":1,"é":"x"}');
    expect(canonicalJson({ n: 1e21, m: 0.1, k: -0 })).toBe('{"k":0,"m":0.1,"n":1e+21}');
  });
});

describe('parseManifestBytes', () => {
  it('accepts canonical bytes', () => {
    fc.assert(
      fc.property(manifestBody, (body) => {
        const m = manifestOf(body);
        const bytes = canonicalJson(m);
        expect(parseManifestBytes(bytes)).toEqual(JSON.parse(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses the same manifest with its keys in another order', () => {
    fc.assert(
      fc.property(manifestBody, fc.integer(), (body, seed) => {
        const m = manifestOf(body);
        const canonical = canonicalJson(m);
        const keys = Object.keys(permute(m, seed) as object);
        const sorted = Object.keys(JSON.parse(canonical));
        fc.pre(keys.join('\u0000') !== sorted.join('\u0000'));
        const reordered = stringifyInOrder(m, keys);
        expect(JSON.parse(reordered)).toEqual(JSON.parse(canonical));
        expect(() => parseManifestBytes(reordered)).toThrowError(expect.objectContaining({ code: 'MANIFEST_NOT_CANONICAL' }));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a duplicate key, even one repeating the same value', () => {
    fc.assert(
      fc.property(manifestBody, fc.nat(), (body, pick) => {
        const m = manifestOf(body);
        const canonical = canonicalJson(m);
        const keys = Object.keys(JSON.parse(canonical));
        const k = keys[pick % keys.length]!;
        const duplicated = `{${JSON.stringify(k)}:${canonicalJson(m[k])},${canonical.slice(1)}`;
        let error: unknown;
        try {
          parseManifestBytes(duplicated);
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(RepriseError);
        expect((error as RepriseError).code).toBe('MANIFEST_NOT_CANONICAL');
      }),
      { numRuns: 300 },
    );
  });

  it('refuses insignificant whitespace and a changed value', () => {
    const m = manifestOf({ plan: { name: 'x', revision: 1 } });
    const bytes = canonicalJson(m);
    expect(() => parseManifestBytes(JSON.stringify(JSON.parse(bytes), null, 2))).toThrowError(expect.objectContaining({ code: 'MANIFEST_NOT_CANONICAL' }));
    expect(() => parseManifestBytes(bytes.replace('"revision":1', '"revision":2'))).toThrowError(expect.objectContaining({ code: 'MANIFEST_HASH_MISMATCH' }));
  });
});
