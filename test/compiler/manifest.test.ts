/**
 * The manifest hash pins the plan's content and the bytes of every file it runs: the same
 * inputs give the same bytes whatever the YAML style; any changed value or handler byte changes it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../../compiler/compile.js';
import { parseManifestBytes, runIdOf } from '../../compiler/manifest.js';
import { fsPlanSource } from '../../compiler/source.js';
import { fixture, root, textSource } from './helpers.js';

const examples = join(root, 'plans', 'examples');
const planPath = join(examples, 'orders-tax-recompute.yaml');
const planText = readFileSync(planPath, 'utf8');
const handlerPath = './orders-tax-recompute.handler.ts';
const handlerBytes = readFileSync(join(examples, handlerPath));

const compileText = (text: string, overrides: Record<string, string | Buffer> = {}) => compileSource(textSource(text, examples, 'plan.yaml', overrides));

describe('manifest', () => {
  it('is byte-identical across compilations', async () => {
    const a = await compileSource(fsPlanSource(planPath));
    const b = await compileSource(fsPlanSource(planPath));
    expect(b.bytes).toBe(a.bytes);
    expect(b.hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(a.runId).toBe(`orders-tax-recompute.r1.${a.hash.slice(7, 15)}`);
  });

  it('is its own canonical JSON, and parses back to the same manifest', async () => {
    const c = await compileSource(fsPlanSource(planPath));
    expect(c.bytes.includes('\n')).toBe(false);
    const m = parseManifestBytes(c.bytes);
    expect(m).toEqual(c.manifest);
    expect(runIdOf(m)).toBe(c.runId);
  });

  it('does not depend on where the plan is compiled from (paths stay relative to the plan)', async () => {
    const a = await compileSource(fsPlanSource(planPath));
    const b = await compileSource(fsPlanSource(join('plans', 'examples', 'orders-tax-recompute.yaml')));
    expect(b.hash).toBe(a.hash);
    expect(a.manifest.files.handler.path).toBe(handlerPath);
  });

  it('has the same hash for the plan rewritten in another YAML style (order, flow style, comments, quoting, anchors, merge keys)', async () => {
    const restyled = readFileSync(fixture('orders-tax-recompute.restyled.yaml'), 'utf8');
    expect(restyled).not.toBe(planText);
    expect(restyled).toContain('<<: &dedupeLive');
    const a = await compileSource(fsPlanSource(planPath));
    const b = await compileText(restyled);
    expect(b.hash).toBe(a.hash);
    expect(b.bytes).toBe(a.bytes);
  });

  it('changes when one byte of the handler changes', async () => {
    const a = await compileText(planText);
    const changed = Buffer.from(handlerBytes);
    const i = changed.indexOf('1900');
    expect(i).toBeGreaterThan(0);
    changed[i + 3] = '1'.charCodeAt(0); // a 19.01% tax rate
    const b = await compileText(planText, { [handlerPath]: changed });
    expect(b.hash).not.toBe(a.hash);
    expect(b.manifest.files.handler.sha256).not.toBe(a.manifest.files.handler.sha256);
    expect(b.manifest.files.plan.sha256).toBe(a.manifest.files.plan.sha256);
  });

  it('changes when one value of the plan changes', async () => {
    const a = await compileText(planText);
    const b = await compileText(planText.replace('itemsPerSecond: 200', 'itemsPerSecond: 199'));
    expect(b.hash).not.toBe(a.hash);
    expect(b.plan.rate.itemsPerSecond).toBe(199);
  });

  it('pins the plan as written: dropping a field equal to its default keeps the normalized plan but changes the hash', async () => {
    const a = await compileText(planText);
    const b = await compileText(planText.replace('  ordering: none\n', ''));
    expect(b.plan).toEqual(a.plan);
    expect(b.hash).not.toBe(a.hash);
  });

  it('pins the JSONL source of a plan that reads one', async () => {
    const c = await compileSource(fsPlanSource(join(examples, 'webhook-redelivery.yaml')));
    expect(c.manifest.files.source?.path).toBe('./webhook-redelivery.dead-letters.jsonl');
    expect(c.manifest.files.source?.sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('module effects', () => {
  it('are pinned by the sha256 of their bytes, like the handler', async () => {
    const dir = fixture('');
    const text = readFileSync(fixture('with-module.yaml'), 'utf8');
    const a = await compileSource(textSource(text, dir));
    expect(a.manifest.files.modules).toEqual([{ effect: 'recompute_cache', path: './effect-module.ts', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
    const b = await compileSource(textSource(text, dir, 'plan.yaml', { './effect-module.ts': `${readFileSync(fixture('effect-module.ts'), 'utf8')} ` }));
    expect(b.hash).not.toBe(a.hash);
    expect(b.manifest.files.handler).toEqual(a.manifest.files.handler);
  });
});
