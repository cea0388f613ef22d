import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runStage } from '../../executor/stages/run.js';
import { StateStore } from '../../executor/store/store.js';
import { createTestDatabase, uniqueName, withClient, type TestDatabase } from '../support/db.js';
import { startHttpServer, type TestHttpServer } from '../support/http.js';
import { seedOrders } from '../support/orders.js';
import { copyPlan, examplesDir } from '../support/plans.js';

const N = 3000;

describe.each(['embedded', 'postgres'] as const)('orders example end to end, %s state store', (store) => {
  let db: TestDatabase;
  let mailer: TestHttpServer;
  let redis: Redis;
  const ns = uniqueName('invoices');
  const stream = uniqueName('invoice_events');
  let env: NodeJS.ProcessEnv;
  let planPath: string;
  let stateUrl: string;
  let reportsDir: string;

  beforeAll(async () => {
    db = await createTestDatabase('orders');
    await seedOrders(db.url, N);
    mailer = await startHttpServer();
    redis = new Redis(inject('redisUrl'));
    env = { ...process.env, ORDERS_DATABASE_URL: db.url, EVENTS_REDIS_URL: inject('redisUrl'), MAILER_URL: mailer.url, ALERT_WEBHOOK_URL: mailer.url };
    const plan = copyPlan(join(examplesDir, 'orders-tax-recompute.yaml'), {
      selection: { expect: { min: 1000, max: 10_000 } },
      rate: { itemsPerSecond: 50_000, live: undefined, concurrency: 8, maxConnections: 10, protect: [] },
      dedupe: { namespace: ns },
      liveBoundary: undefined,
      checkpoint: store === 'postgres' ? { connection: 'orders' } : undefined,
    }, (d) => { d.sideEffects.find((e: { name: string }) => e.name === 'publish_invoice_corrected').stream = stream; });
    planPath = plan.path;
    stateUrl = store === 'embedded' ? join(mkdtempSync(join(tmpdir(), 'reprise-state-')), 'state') : 'unused://';
    reportsDir = mkdtempSync(join(tmpdir(), 'reprise-reports-'));
  });

  afterAll(async () => {
    redis?.disconnect();
    await mailer?.close();
  });

  it('dry-run captures every effect and applies none', async () => {
    const before = await withClient(db.url, async (c) => (await c.query('select sum(total_cents)::text as s from invoices')).rows[0].s);
    const out = await runStage({ plan: planPath, stage: 'dry-run', stateUrl, env, reportsDir });
    expect(out.exitCode).toBe(0);
    const r = out.report!;
    expect(r.count?.value).toBe(N);
    expect(r.counts.processed).toBe(N);
    const byName = Object.fromEntries(r.effects.map((e) => [e.name, e.counts]));
    expect(byName.write_invoice!.captured).toBe(N);
    expect(byName.email_customer!.captured).toBe(N);
    expect(byName.write_invoice!.applied).toBe(0);
    expect(r.preview.length).toBeGreaterThan(0);
    expect(r.preview[0]!.diff).toContain('total_cents');
    const after = await withClient(db.url, async (c) => (await c.query('select sum(total_cents)::text as s from invoices')).rows[0].s);
    expect(after).toBe(before);
    expect(mailer.requests).toHaveLength(0);
    expect(await redis.xlen(stream).catch(() => 0)).toBe(0);
  });

  it('full run applies replay, suppresses email, dedupes events, and a rerun does nothing', async () => {
    await redis.del(stream);
    const out = await runStage({ plan: planPath, stage: 'full', stateUrl, env, reportsDir, workers: 2 });
    expect(out.exitCode, JSON.stringify(out.stop)).toBe(0);
    const r = out.report!;
    const byName = Object.fromEntries(r.effects.map((e) => [e.name, e.counts]));
    expect(byName.write_invoice!.applied).toBe(N);
    expect(byName.email_customer!.suppressed).toBe(N);
    expect(mailer.requests).toHaveLength(0);
    const published = byName.publish_invoice_corrected!.applied;
    expect(published).toBeGreaterThan(0);
    expect(await redis.xlen(stream)).toBe(published);
    const keys = await redis.keys(`reprise:dedupe:${ns}:*`);
    expect(keys).toHaveLength(published);
    // Every invoice in the window now carries the recomputed total: none has the buggy tax left.
    const stale = await withClient(db.url, async (c) => (await c.query(
      `select count(*)::int as n from invoices i join orders o on o.id = i.order_id
        where o.status = 'invoiced' and o.created_at >= '2026-10-01' and o.created_at < '2026-11-12' and i.tax_cents = o.subtotal_cents / 10`,
    )).rows[0].n);
    expect(stale).toBe(0);
    const again = await runStage({ plan: planPath, stage: 'full', stateUrl, env, reportsDir });
    expect(again.outcome).toBe('already-completed');
    expect(await redis.xlen(stream)).toBe(published);
    const st = store === 'postgres' ? await StateStore.open(db.url) : await StateStore.open(stateUrl);
    const run = (await st.listRuns())[0]!;
    expect(run.items_done).toBe(N);
    expect(run.status).toBe('completed');
    const rows = await st.ledger(run.id, { effect: 'write_invoice', limit: 5 });
    expect(rows[0]!.before).toBeTruthy();
    await st.close();
  });
});
