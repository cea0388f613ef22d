/**
 * Generated files are fresh (types from the schemas, docs/plan-reference.md), every field of the
 * plan schema is documented, and the defaults the docs state are the ones the compiler applies.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { normalize } from '../../compiler/normalize.js';
import { formatDuration } from '../../compiler/duration.js';
import type { PlanFile } from '../../schema/plan.types.js';
import { root } from './helpers.js';

const schema = JSON.parse(readFileSync(join(root, 'schema', 'plan.schema.json'), 'utf8'));

function runScript(script: string, ...args: string[]): { code: number; stderr: string } {
  try {
    execFileSync(process.execPath, [join(root, 'scripts', script), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: 0, stderr: '' };
  } catch (e) {
    const err = e as { status?: number; stderr?: Buffer };
    return { code: err.status ?? 1, stderr: String(err.stderr ?? '') };
  }
}

function resolve(node: Record<string, unknown>): Record<string, unknown> {
  let cur = node;
  for (let i = 0; i < 8 && typeof cur.$ref === 'string'; i++) {
    let t: unknown = schema;
    for (const seg of (cur.$ref as string).replace(/^#\//, '').split('/')) t = (t as Record<string, unknown>)[seg];
    cur = t as Record<string, unknown>;
  }
  return cur;
}

/** Every `properties` entry anywhere in the schema, with its JSON pointer. */
function allProperties(): Array<{ at: string; node: unknown }> {
  const out: Array<{ at: string; node: unknown }> = [];
  const walk = (n: unknown, at: string): void => {
    if (n === null || typeof n !== 'object') return;
    if (Array.isArray(n)) return n.forEach((x, i) => walk(x, `${at}/${i}`));
    const o = n as Record<string, unknown>;
    if (o.properties && typeof o.properties === 'object') {
      for (const [k, v] of Object.entries(o.properties)) out.push({ at: `${at}/properties/${k}`, node: v });
    }
    for (const [k, v] of Object.entries(o)) walk(v, `${at}/${k}`);
  };
  walk(schema, '#');
  return out;
}

describe('generated files', () => {
  it('schema/*.types.ts are fresh (npm run gen:types)', () => {
    const r = runScript('gen-types.mjs', '--check');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('docs/plan-reference.md is fresh (npm run gen:docs)', () => {
    const r = runScript('gen-plan-reference.mjs', '--check');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('docs/plan-reference.md names every field path of the schema', () => {
    const doc = readFileSync(join(root, 'docs', 'plan-reference.md'), 'utf8');
    for (const path of ['selection.window.start', 'rate.live.capacity', 'rate.protect[].http.url', 'canary.validate[].query', 'abort.alert.webhook', 'connections.<name>.env', 'sideEffects[].dedupeKey', 'sideEffects[].reverse.fields']) {
      expect(doc).toContain(`\`${path}\``);
    }
    for (const key of Object.keys(schema.properties)) expect(doc).toContain(`\`${key}\``);
  });
});

describe('plan schema', () => {
  it('has a $id and a description on every property (its own, or that of the definition it refers to)', () => {
    expect(schema.$id).toMatch(/^https:\/\//);
    const undocumented = allProperties()
      .filter(({ node }) => typeof node !== 'boolean')
      .filter(({ node }) => {
        const n = node as Record<string, unknown>;
        return typeof n.description !== 'string' && typeof resolve(n).description !== 'string';
      })
      .map(({ at }) => at);
    expect(undocumented).toEqual([]);
    expect(allProperties().length).toBeGreaterThan(100);
  });

  it('states the defaults the compiler applies', () => {
    const minimal: PlanFile = {
      reprise: 1,
      name: 'defaults',
      revision: 1,
      owner: 'o',
      author: 'a',
      reason: 'r',
      connections: { db: { env: 'DB' }, cache: { env: 'CACHE' } },
      selection: { connection: 'db', query: 'select 1', key: 'id', window: { start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z' }, expect: { min: 1000, max: 2000 } },
      processing: { handler: './h.ts' },
      sideEffects: [
        { name: 's', kind: 'sql', connection: 'db', statement: 'select 1', backfill: 'dedupe', live: 'dedupe', dedupeKey: 'k' },
        { name: 'h', kind: 'http', url: 'https://x.example', backfill: 'replay', live: 'apply' },
      ],
      dedupe: { store: 'redis', connection: 'cache' },
      rate: { protect: [{ name: 'p', connection: 'db', query: 'select 1 as value', max: 1 }] },
    };
    const plan = normalize(minimal);
    const sql = plan.sideEffects[0]!;
    const http = plan.sideEffects[1]!;
    const stated = (pointer: string): string => {
      let t: unknown = schema;
      for (const seg of pointer.split('/')) t = (t as Record<string, unknown>)[seg];
      const d = (t as { description: string }).description;
      const m = /Default:?\s+(.+?)\.(?=\s|$)/.exec(d);
      if (!m) throw new Error(`no default stated at ${pointer}`);
      return m[1]!;
    };
    const cases: Array<[string, unknown]> = [
      ['properties/processing/properties/timeoutMs', plan.processing.timeoutMs],
      ['properties/processing/properties/retries/properties/max', plan.processing.retries.max],
      ['properties/processing/properties/retries/properties/backoffMs', plan.processing.retries.backoffMs],
      ['properties/dedupe/properties/ttl', formatDuration(plan.dedupe!.ttl)],
      ['properties/rate/properties/itemsPerSecond', plan.rate.itemsPerSecond],
      ['properties/rate/properties/concurrency', plan.rate.concurrency],
      ['properties/rate/properties/chunkSize', plan.rate.chunkSize],
      ['properties/rate/properties/checkEvery', formatDuration(plan.rate.checkEvery)],
      ['properties/canary/properties/size', plan.canary.size],
      ['properties/canary/properties/pick', plan.canary.pick],
      ['properties/abort/properties/maxErrorRate', plan.abort.maxErrorRate],
      ['properties/abort/properties/errorWindow', plan.abort.errorWindow],
      ['properties/abort/properties/maxConsecutiveErrors', plan.abort.maxConsecutiveErrors],
      ['properties/abort/properties/stallAfter', formatDuration(plan.abort.stallAfter)],
      ['properties/abort/properties/onStall', plan.abort.onStall],
      ['properties/approvals/properties/canary', `min ${plan.approvals.canary.min}`],
      ['properties/approvals/properties/full', `min ${plan.approvals.full.min}`],
      ['properties/approvals/properties/reverse', `min ${plan.approvals.reverse.min}`],
      ['$defs/ordering', plan.selection!.ordering],
      ['$defs/probe/properties/timeoutMs', plan.rate.protect[0]!.timeoutMs],
      ['$defs/effectCommon/properties/delivery', sql.delivery],
      ['$defs/sqlEffect/properties/idempotent', sql.kind === 'sql' && sql.idempotent],
      ['$defs/httpEffect/properties/method', http.kind === 'http' && http.method],
      ['$defs/httpEffect/properties/timeoutMs', http.kind === 'http' && http.timeoutMs],
    ];
    for (const [pointer, applied] of cases) expect(`${pointer}: ${stated(pointer)}`).toBe(`${pointer}: ${String(applied)}`);
    expect(stated('properties/dedupe/properties/namespace')).toBe('the plan name');
    expect(plan.dedupe!.namespace).toBe('defaults');
    expect(stated('properties/rate/properties/maxConnections')).toBe('concurrency + 1');
    expect(plan.rate.maxConnections).toBe(plan.rate.concurrency + 1);
  });
});
