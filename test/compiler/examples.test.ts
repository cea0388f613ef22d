/**
 * The example plans are real: they validate and compile, their handlers call only declared
 * effects and make the choices their plans describe, and every SQL text they contain is valid
 * against the tables their *.schema.sql creates (prepared on a real PostgreSQL).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkPlan, compileSource } from '../../compiler/compile.js';
import { parseNamedSql } from '../../compiler/sql-params.js';
import { fsPlanSource } from '../../compiler/source.js';
import type { EffectOutcome, Handler, HandlerContext } from '../../executor/handler-api.js';
import type { Plan } from '../../schema/manifest.types.js';
import { createTestDatabase, withClient } from '../support/db.js';
import { root } from './helpers.js';

const dir = join(root, 'plans', 'examples');
const plans = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();

describe('example plans', () => {
  it('are the three scenarios, each with a handler and a schema', () => {
    expect(plans).toEqual(['notifications-redrive.yaml', 'orders-tax-recompute.yaml', 'webhook-redelivery.yaml']);
    for (const p of plans) {
      const base = p.replace(/\.yaml$/, '');
      expect(readdirSync(dir)).toEqual(expect.arrayContaining([`${base}.handler.ts`, `${base}.schema.sql`]));
    }
  });

  it.each(plans)('%s validates and compiles', async (p) => {
    expect(checkPlan(fsPlanSource(join(dir, p))).diagnostics).toEqual([]);
    const c = await compileSource(fsPlanSource(join(dir, p)));
    expect(c.plan.name).toBe(p.replace(/\.yaml$/, ''));
  });

  it('cover the three backfill policies and both dedupe stores', async () => {
    const compiled = await Promise.all(plans.map((p) => compileSource(fsPlanSource(join(dir, p)))));
    const effects = compiled.flatMap((c) => c.plan.sideEffects);
    expect(new Set(effects.map((e) => e.backfill))).toEqual(new Set(['replay', 'suppress', 'dedupe']));
    expect(new Set(compiled.map((c) => c.plan.dedupe?.store))).toEqual(new Set(['redis', 'postgres']));
    expect(compiled.some((c) => c.plan.source !== null)).toBe(true);
    expect(compiled.some((c) => c.plan.liveBoundary !== null && c.plan.sideEffects.some((e) => e.backfill === 'dedupe' && e.live !== 'dedupe'))).toBe(true);
  });

  it('webhook-redelivery reads a realistic dead-letter dump', async () => {
    const c = await compileSource(fsPlanSource(join(dir, 'webhook-redelivery.yaml')));
    const lines = readFileSync(join(dir, 'webhook-redelivery.dead-letters.jsonl'), 'utf8').trimEnd().split('\n');
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.length).toBeGreaterThanOrEqual(150);
    expect(new Set(events.map((e) => e.event_id)).size).toBe(events.length);
    const { start, end } = c.plan.source!.window!;
    const inWindow = events.filter((e) => String(e.occurred_at) >= start && String(e.occurred_at) < end);
    expect(inWindow.length).toBeGreaterThanOrEqual(c.plan.source!.expect.min);
    expect(inWindow.length).toBeLessThanOrEqual(c.plan.source!.expect.max);
    expect(inWindow.length).toBeLessThan(events.length); // some are outside and get skipped
  });
});

/** Runs a handler with recording effects; returns the calls it made. */
async function runHandler(plan: Plan, file: string, item: Record<string, unknown>, outcome: EffectOutcome['status'] = 'applied') {
  const mod = (await import(join(dir, file))) as { default: Handler };
  const calls: Array<{ effect: string; args: Record<string, unknown> }> = [];
  const effects = Object.fromEntries(
    plan.sideEffects.map((e) => [e.name, async (args: Record<string, unknown>): Promise<EffectOutcome> => {
      calls.push({ effect: e.name, args });
      return { status: e.backfill === 'suppress' ? 'suppressed' : outcome };
    }]),
  );
  const log = { info() {}, warn() {}, error() {} };
  const ctx: HandlerContext = { effects, log, signal: new AbortController().signal, stage: 'canary', runId: `${plan.name}.r1.00000000`, attempt: 1, itemKey: String(item.id ?? item.event_id) };
  await mod.default(item, ctx);
  for (const call of calls) {
    const declared = plan.sideEffects.find((e) => e.name === call.effect)!;
    expect(Object.keys(call.args).sort(), `${call.effect} gets exactly its arguments`).toEqual([...declared.args].sort());
  }
  return calls;
}

describe('example handlers', () => {
  it('orders-tax-recompute rounds half to even and publishes a correction only when the total changed', async () => {
    const { plan } = await compileSource(fsPlanSource(join(dir, 'orders-tax-recompute.yaml')));
    // 19% of 1250 = 237.5 -> 238 (half to even); total 1488.
    const changed = await runHandler(plan, 'orders-tax-recompute.handler.ts', { id: '7', customer_id: '3', subtotal_cents: '1250', region: 'eu-de', invoiced_total_cents: '1487' });
    expect(changed.map((c) => c.effect)).toEqual(['write_invoice', 'email_customer', 'publish_invoice_corrected']);
    expect(changed[0]!.args).toEqual({ order_id: '7', total_cents: '1488', tax_cents: '238' });
    const same = await runHandler(plan, 'orders-tax-recompute.handler.ts', { id: '8', customer_id: '3', subtotal_cents: '1250', region: 'eu-de', invoiced_total_cents: '1488' });
    expect(same.map((c) => c.effect)).toEqual(['write_invoice', 'email_customer']);
  });

  it('webhook-redelivery marks a dead letter delivered-by-live when the dispatcher got there first', async () => {
    const { plan } = await compileSource(fsPlanSource(join(dir, 'webhook-redelivery.yaml')));
    const event = JSON.parse(readFileSync(join(dir, 'webhook-redelivery.dead-letters.jsonl'), 'utf8').split('\n')[20]!) as Record<string, unknown>;
    const sent = await runHandler(plan, 'webhook-redelivery.handler.ts', event);
    expect(sent.map((c) => c.effect)).toEqual(['deliver_webhook', 'resolve_dead_letter']);
    expect(sent[1]!.args.resolution).toBe('redelivered');
    const dup = await runHandler(plan, 'webhook-redelivery.handler.ts', event, 'skipped-dup');
    expect(dup[1]!.args.resolution).toBe('delivered-by-live');
  });

  it('notifications-redrive sends inside the outage gap and holds what is around it', async () => {
    const { plan } = await compileSource(fsPlanSource(join(dir, 'notifications-redrive.yaml')));
    const n = (created_at: Date | string) => ({ id: 1, user_id: 2, category: 'order', title: 't', body: 'b', created_at });
    const inside = await runHandler(plan, 'notifications-redrive.handler.ts', n(new Date('2026-11-03T12:00:00Z')));
    expect(inside.map((c) => [c.effect, c.args.outcome])).toEqual([['send_push', undefined], ['mark_redriven', 'resent']]);
    const before = await runHandler(plan, 'notifications-redrive.handler.ts', n('2026-11-03T09:05:00Z'));
    expect(before.map((c) => [c.effect, c.args.outcome])).toEqual([['send_push_unconfirmed', undefined], ['mark_redriven', 'held-for-review']]);
    const gapEnd = await runHandler(plan, 'notifications-redrive.handler.ts', n('2026-11-03T17:40:00Z'));
    expect(gapEnd[0]!.effect).toBe('send_push_unconfirmed');
  });
});

/** Every SQL text of a plan, with :names bound as $n. */
function sqlTexts(plan: Plan): Array<{ what: string; sql: string }> {
  const out: Array<{ what: string; sql: string }> = [];
  const add = (what: string, text: string | null | undefined): void => { if (text) out.push({ what, sql: parseNamedSql(text).sql }); };
  add('selection.query', plan.selection?.query);
  add('liveBoundary.watermark.query', plan.liveBoundary?.watermark?.query);
  plan.rate.protect.forEach((p) => add(`probe ${p.name}`, p.query));
  plan.canary.validate.forEach((v) => add(`validate ${v.name}`, v.query));
  for (const e of plan.sideEffects) {
    if (e.kind !== 'sql') continue;
    add(`${e.name}.statement`, e.statement);
    add(`${e.name}.preview`, e.preview);
    // :before.<column> values are bound like the others.
    add(`${e.name}.reverse`, e.reverse?.statement);
  }
  return out;
}

describe('example SQL against the example schemas (PostgreSQL)', () => {
  it.each(plans)('every query and statement of %s prepares', async (p) => {
    const { plan } = await compileSource(fsPlanSource(join(dir, p)));
    const db = await createTestDatabase('examples');
    await withClient(db.url, async (client) => {
      await client.query(readFileSync(join(dir, p.replace(/\.yaml$/, '.schema.sql')), 'utf8'));
      const texts = sqlTexts(plan);
      expect(texts.length).toBeGreaterThan(3);
      for (const [i, t] of texts.entries()) {
        await expect(client.query(`prepare s${i} as ${t.sql}`), t.what).resolves.toBeDefined();
      }
    });
    await db.drop();
  });
});
