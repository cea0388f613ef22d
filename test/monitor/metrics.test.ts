import { readFileSync } from 'node:fs';
import { register as globalRegistry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { METRIC_NAMES, RunMetrics } from '../../executor/monitor/metrics.js';
import { startMetricsServer, type MetricsServer } from '../../executor/monitor/server.js';

const dashboard = JSON.parse(readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8'));
const alerts = parseYaml(readFileSync(new URL('../../docs/prometheus-alerts.yml', import.meta.url), 'utf8'));

const namesIn = (expr: string): string[] => [...expr.matchAll(/\breprise_[a-z_]+\b/g)].map((m) => m[0]);
const dashboardExprs: string[] = dashboard.panels.flatMap((p: { targets?: Array<{ expr: string }> }) => (p.targets ?? []).map((t) => t.expr));
const dashboardNames = new Set(dashboardExprs.flatMap(namesIn));
const alertRules: Array<{ alert: string; expr: string; for?: string; annotations: Record<string, string> }> = alerts.groups.flatMap((g: { rules: unknown[] }) => g.rules);
const alertNames = new Set(alertRules.flatMap((r) => namesIn(r.expr)));

function newMetrics(now: () => number = Date.now): RunMetrics {
  return new RunMetrics({
    run: 'orders-tax-recompute.r1.0123abcd',
    plan: 'orders-tax-recompute',
    revision: 1,
    manifest: `sha256:${'0123abcd'.repeat(8)}`,
    stage: 'canary',
    probes: ['replica-lag'],
    effects: [
      { name: 'write_invoice', policy: 'replay' },
      { name: 'email_customer', policy: 'suppress' },
    ],
    now,
  });
}

async function registryNames(m: RunMetrics): Promise<Set<string>> {
  return new Set((await m.registry.getMetricsAsJSON()).map((x) => x.name));
}

/** Sample value of `name` whose labels include `labels`, from the text exposition. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe('metric names', () => {
  it('are exactly the documented ones, in a registry of their own', async () => {
    const m = newMetrics();
    expect([...(await registryNames(m))].sort()).toEqual([...METRIC_NAMES].sort());
    expect((await globalRegistry.getMetricsAsJSON()).filter((x) => x.name.startsWith('reprise_'))).toEqual([]);
    // Two runs in one process do not collide.
    expect(() => newMetrics()).not.toThrow();
    for (const metric of await m.registry.getMetricsAsJSON()) expect(metric.help.length, metric.name).toBeGreaterThan(20);
  });

  it('the Grafana dashboard uses every metric, and only metrics that exist', async () => {
    const names = await registryNames(newMetrics());
    expect([...dashboardNames].filter((n) => !names.has(n))).toEqual([]);
    expect([...names].filter((n) => !dashboardNames.has(n))).toEqual([]);
  });

  it('the alert rules use only metrics that exist and carry runbooks', async () => {
    const names = await registryNames(newMetrics());
    expect([...alertNames].filter((n) => !names.has(n))).toEqual([]);
    expect(alertRules.map((r) => r.alert).sort()).toEqual(['RepriseErrorRateHigh', 'RepriseRunStalled', 'RepriseThrottledTooLong']);
    for (const r of alertRules) {
      expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
      expect(r.annotations.summary, r.alert).toBeTruthy();
      expect(r.annotations.runbook, r.alert).toMatch(/reprise (abort|pause)/);
      expect(r.annotations.runbook_url, r.alert).toBe(`docs/operations.md#${r.alert.toLowerCase()}`);
    }
    const ops = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
    for (const r of alertRules) expect(ops).toContain(`### ${r.alert}`);
  });

  it('the dashboard is an importable Grafana dashboard', () => {
    expect(dashboard.uid).toBe('reprise-runs');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.templating.list.map((v: { name: string }) => v.name)).toEqual(['datasource', 'run', 'stage']);
    const ids = dashboard.panels.map((p: { id: number }) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.datasource.uid).toBe('${datasource}');
      expect(p.gridPos.w).toBeGreaterThan(0);
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      for (const t of p.targets) expect(t.expr).toMatch(/run=~"\$run", stage=~"\$stage"/);
    }
  });
});

describe('RunMetrics', () => {
  it('counts items, failures, effects and chunks under run and stage labels', async () => {
    let t = 1_000_000;
    const m = newMetrics(() => t);
    m.setTotal(100);
    for (let i = 0; i < 10; i++) m.itemDone(i % 5 !== 4);
    m.itemDone(false);
    m.effect('write_invoice', 'replay', 'applied');
    m.effect('write_invoice', 'replay', 'applied');
    m.effect('email_customer', 'suppress', 'suppressed');
    m.chunkCommitted(11);
    m.setDone(40);
    t += 2_000;
    const text = await m.metrics();
    const l = { run: 'orders-tax-recompute.r1.0123abcd', stage: 'canary' };
    expect(sample(text, 'reprise_run_info', { ...l, plan: 'orders-tax-recompute', revision: '1', manifest: `sha256:${'0123abcd'.repeat(8)}` })).toBe(1);
    expect(sample(text, 'reprise_items_total', l)).toBe(100);
    expect(sample(text, 'reprise_items_processed_total', l)).toBe(11);
    expect(sample(text, 'reprise_items_done', l)).toBe(40);
    expect(sample(text, 'reprise_items_failed_total', l)).toBe(3);
    expect(sample(text, 'reprise_errors_consecutive', l)).toBe(2);
    expect(sample(text, 'reprise_effects_total', { ...l, effect: 'write_invoice', policy: 'replay', status: 'applied' })).toBe(2);
    expect(sample(text, 'reprise_effects_total', { ...l, effect: 'email_customer', policy: 'suppress', status: 'suppressed' })).toBe(1);
    expect(sample(text, 'reprise_effects_total', { ...l, effect: 'write_invoice', policy: 'replay', status: 'skipped-dup' })).toBe(0);
    expect(sample(text, 'reprise_chunks_committed_total', l)).toBe(1);
    expect(sample(text, 'reprise_seconds_since_progress', l)).toBe(2);
    expect(sample(text, 'reprise_rate_items_per_second', l)).toBe(5.5); // 11 items over the 2 s the run is old
    expect(m.snapshot()).toMatchObject({ processed: 11, failed: 3, committed: 11, chunks: 1, consecutiveErrors: 2, total: 100 });
  });

  it('measures seconds since progress and throttled time at scrape time', async () => {
    let t = 0;
    const m = newMetrics(() => t);
    const l = { run: 'orders-tax-recompute.r1.0123abcd', stage: 'canary' };
    t = 5_000;
    m.throttled('replica-lag');
    t = 8_000;
    let text = await m.metrics();
    expect(sample(text, 'reprise_throttled', { ...l, probe: 'replica-lag' })).toBe(1);
    expect(sample(text, 'reprise_throttled_seconds_total', l)).toBe(3);
    expect(sample(text, 'reprise_seconds_since_progress', l)).toBe(8);
    t = 9_500;
    m.throttled(null);
    m.progress();
    t = 20_000;
    m.stalled(true);
    text = await m.metrics();
    expect(sample(text, 'reprise_throttled', { ...l, probe: 'replica-lag' })).toBe(0);
    expect(sample(text, 'reprise_throttled_seconds_total', l)).toBe(4.5);
    expect(sample(text, 'reprise_seconds_since_progress', l)).toBe(10.5);
    expect(sample(text, 'reprise_stalled', l)).toBe(1);
    // A probe not declared up front appears when it first throttles.
    m.throttled('queue-depth');
    text = await m.metrics();
    expect(sample(text, 'reprise_throttled', { ...l, probe: 'queue-depth' })).toBe(1);
    expect(sample(text, 'reprise_throttled', { ...l, probe: 'replica-lag' })).toBe(0);
  });

  it('moves to a new stage: state gauges start afresh, counters of the old stage remain', async () => {
    let t = 0;
    const m = newMetrics(() => t);
    m.setTotal(100);
    m.itemDone(false);
    m.stalled(true);
    t = 1_000;
    m.setStage('full');
    m.setTotal(48_113);
    const text = await m.metrics();
    const run = 'orders-tax-recompute.r1.0123abcd';
    expect(sample(text, 'reprise_items_processed_total', { run, stage: 'canary' })).toBe(1);
    expect(sample(text, 'reprise_items_processed_total', { run, stage: 'full' })).toBe(0);
    expect(sample(text, 'reprise_items_total', { run, stage: 'canary' })).toBeUndefined();
    expect(sample(text, 'reprise_items_total', { run, stage: 'full' })).toBe(48_113);
    expect(sample(text, 'reprise_stalled', { run, stage: 'full' })).toBe(0);
    expect(sample(text, 'reprise_stalled', { run, stage: 'canary' })).toBeUndefined();
    expect(sample(text, 'reprise_run_info', { run, stage: 'full' })).toBe(1);
    expect(sample(text, 'reprise_run_info', { run, stage: 'canary' })).toBeUndefined();
    expect(m.stage).toBe('full');
  });
});

describe('metrics server', () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('serves every metric the dashboard uses on /metrics, and /healthz', async () => {
    const m = newMetrics();
    server = await startMetricsServer(0, m);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/metrics`);
    m.setTotal(500);
    m.setDone(2);
    m.itemDone(true);
    m.itemDone(false);
    m.effect('write_invoice', 'replay', 'applied');
    m.chunkCommitted(2);
    m.throttled('replica-lag');

    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const present = new Set([...text.matchAll(/^(reprise_[a-z_]+)(?:\{| )/gm)].map((x) => x[1]));
    expect([...dashboardNames].filter((n) => !present.has(n))).toEqual([]);
    for (const name of METRIC_NAMES) expect(text).toContain(`# HELP ${name} `);

    const health = await fetch(server.url.replace('/metrics', '/healthz'));
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('ok\n');
    expect((await fetch(server.url.replace('/metrics', '/nope'))).status).toBe(404);
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(405);
  });

  it('refuses a port already in use with a clear error', async () => {
    server = await startMetricsServer(0, newMetrics());
    await expect(startMetricsServer(server.port, newMetrics())).rejects.toMatchObject({ code: 'METRICS_PORT_UNAVAILABLE', hint: expect.stringContaining('--metrics-port') });
  });
});
