import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { contentHash } from '../../compiler/manifest.js';
import { finalizeReport, parseReport, reportFileBase, reportHash } from '../../executor/reports/report.js';
import { reportJsonText } from '../../executor/reports/write.js';
import { canaryBody, canaryReport } from './fixtures.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const schema = JSON.parse(readFileSync(new URL('../../schema/report.schema.json', import.meta.url), 'utf8'));
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
addFormats(ajv);
const validate = ajv.compile(schema);

describe('report schema', () => {
  it('is JSON Schema 2020-12 with an $id, title Report and a description on every property', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.$id).toMatch(/report\.schema\.json$/);
    expect(schema.title).toBe('Report');
    const missing: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (!node || typeof node !== 'object') return;
      const n = node as Record<string, unknown>;
      if (n.properties && typeof n.properties === 'object') {
        for (const [k, v] of Object.entries(n.properties as Record<string, Record<string, unknown>>)) {
          const target = typeof v.$ref === 'string' ? resolve(v.$ref) : v;
          if (!v.description && !target?.description) missing.push(`${path}.${k}`);
        }
      }
      for (const [k, v] of Object.entries(n)) walk(v, `${path}/${k}`);
    };
    const resolve = (ref: string): Record<string, unknown> | undefined => schema.$defs[ref.replace('#/$defs/', '')];
    walk(schema, '#');
    expect(missing).toEqual([]);
  });

  it('accepts a finalized report, and rejects unknown fields and bad values', () => {
    const r = canaryReport();
    expect(validate(r), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...r, extra: 1 })).toBe(false);
    expect(validate({ ...r, outcome: 'ok' })).toBe(false);
    expect(validate({ ...r, manifest: 'sha256:xyz' })).toBe(false);
    expect(validate({ ...r, fingerprints: { x: { kind: 'postgres', runId: 'a' } } })).toBe(false);
    const reverse = canaryReport({ stage: 'reverse', count: null, canary: null, validations: [], abort: { reason: 'operator', detail: 'reprise abort by alice' } });
    expect(validate(reverse), JSON.stringify(validate.errors)).toBe(true);
  });
});

describe('finalizeReport', () => {
  it('hashes every other field with the manifest content hash', () => {
    const body = canaryBody();
    const r = finalizeReport(body);
    expect(r.hash).toBe(contentHash(body));
    expect(r.hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(reportHash(r)).toBe(r.hash);
  });

  it('gives the same hash whatever the key order, and another for any change', () => {
    const body = canaryBody();
    const reordered = Object.fromEntries(Object.entries(body).reverse()) as typeof body;
    expect(finalizeReport(reordered).hash).toBe(finalizeReport(body).hash);
    expect(finalizeReport({ ...body, workers: 3 }).hash).not.toBe(finalizeReport(body).hash);
    expect(finalizeReport({ ...body, errors: { ...body.errors, total: 4 } }).hash).not.toBe(finalizeReport(body).hash);
  });

  it('recomputes a stale hash and stores plain JSON (what the file holds is what was hashed)', () => {
    const r = finalizeReport({ ...canaryReport(), workers: 7, hash: 'sha256:stale' } as never);
    expect(r.hash).toBe(reportHash(r));
    const withDate = finalizeReport({ ...canaryBody(), startedAt: new Date('2026-11-13T09:00:00Z') as unknown as string });
    expect(withDate.startedAt).toBe('2026-11-13T09:00:00.000Z');
  });
});

describe('reportFileBase', () => {
  it('names <run>.<stage>.report', () => {
    expect(reportFileBase('orders-tax-recompute.r1.0123abcd', 'dry-run')).toBe('orders-tax-recompute.r1.0123abcd.dry-run.report');
  });
  it('refuses ids that would leave the directory', () => {
    expect(() => reportFileBase('../etc/passwd', 'full')).toThrow(/cannot name a report file/);
    expect(() => reportFileBase('a/b', 'full')).toThrow();
    expect(() => reportFileBase('', 'full')).toThrow();
  });
});

describe('parseReport', () => {
  it('reads back what is written', () => {
    const r = canaryReport();
    expect(parseReport(reportJsonText(r))).toEqual(r);
  });
  it('refuses an edited report, a wrong kind and non-JSON, each with its own code', () => {
    const r = canaryReport();
    const edited = reportJsonText(r).replace('"succeeded": 97', '"succeeded": 100');
    expect(() => parseReport(edited, 'canary.json')).toThrow(expect.objectContaining({ code: 'REPORT_HASH_MISMATCH', exit: 3 }));
    expect(() => parseReport(JSON.stringify({ ...r, kind: 'x' }))).toThrow(expect.objectContaining({ code: 'REPORT_INVALID' }));
    expect(() => parseReport('{')).toThrow(expect.objectContaining({ code: 'REPORT_INVALID' }));
    expect(() => parseReport('[]')).toThrow(expect.objectContaining({ code: 'REPORT_INVALID' }));
  });
});
