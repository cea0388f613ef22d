/**
 * Watching a real `reprise run` (the CLI as a subprocess, needs the build): the metrics endpoint
 * during the run serves every metric the Grafana dashboard uses, and `--json` prints nothing but
 * JSON lines — the lifecycle events — on stdout.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePlanFile } from '../../compiler/compile.js';
import { METRIC_NAMES } from '../../executor/monitor/metrics.js';
import { startCli } from '../support/cli.js';
import { createTestDatabase } from '../support/db.js';
import { scenarioPlan, seedItems, until } from './scenario.js';

const dashboard = JSON.parse(readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8'));
const dashboardNames = new Set<string>(
  dashboard.panels.flatMap((p: { targets?: Array<{ expr: string }> }) => (p.targets ?? []).flatMap((t) => [...t.expr.matchAll(/\breprise_[a-z_]+\b/g)].map((m) => m[0]))),
);

/** Value of the sample of `name` whose label set contains every pair of `labels`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

async function workspace(n: number, itemsPerSecond: number) {
  const db = await createTestDatabase('clirun');
  await seedItems(db.url, n);
  const plan = scenarioPlan({ n, itemsPerSecond, chunkSize: 20, concurrency: 4 });
  const { runId } = await compilePlanFile(plan.path);
  const reports = mkdtempSync(join(tmpdir(), 'reprise-reports-'));
  return { db, plan: plan.path, runId, reports, env: { ...process.env, MON_DB_URL: db.url, NO_COLOR: '1' } };
}

describe('reprise run, watched', () => {
  it('--metrics-port serves every metric the dashboard uses while the run works', async () => {
    const N = 300;
    const { db, plan, runId, reports, env } = await workspace(N, 75);
    const cli = startCli(['run', plan, '--stage', 'full', '--reports', reports, '--metrics-port', '0'], env);
    let stderr = '';
    cli.child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const url = await until(async () => /^metrics\s+(http:\/\/\S+)$/m.exec(stderr)?.[1], 20_000, 'the metrics URL on stderr');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

    // Scrape while the run works: after a chunk or two have committed, before the end.
    let text = '';
    const labels = { run: runId, stage: 'full' };
    await until(async () => {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      text = await res.text();
      return (sample(text, 'reprise_chunks_committed_total', labels) ?? 0) >= 2;
    }, 30_000, 'two committed chunks in the metrics');
    expect(cli.child.exitCode).toBeNull();
    const present = new Set([...text.matchAll(/^(reprise_[a-z_]+)(?:\{| )/gm)].map((x) => x[1]));
    expect([...dashboardNames].filter((name) => !present.has(name))).toEqual([]);
    expect([...METRIC_NAMES].filter((name) => !present.has(name))).toEqual([]);
    expect(sample(text, 'reprise_run_info', { ...labels, plan: 'monitor-test', revision: '1' })).toBe(1);
    expect(sample(text, 'reprise_items_total', labels)).toBe(N);
    const processed = sample(text, 'reprise_items_processed_total', labels)!;
    expect(processed).toBeGreaterThanOrEqual(40);
    expect(processed).toBeLessThan(N);
    expect(sample(text, 'reprise_effects_total', { ...labels, effect: 'write_sink', policy: 'replay', status: 'applied' })).toBeGreaterThanOrEqual(40);
    expect(sample(text, 'reprise_rate_items_per_second', labels)).toBeGreaterThan(0);
    expect(sample(text, 'reprise_throttled', { ...labels, probe: 'replica-lag' })).toBe(0);
    expect(sample(text, 'reprise_stalled', labels)).toBe(0);
    expect(sample(text, 'reprise_items_failed_total', labels)).toBe(0);

    const res = await cli.done;
    expect(res.code, res.stderr).toBe(0);
    // Human mode: the result on stdout; progress (plain lines: stderr is not a terminal) and the URL on stderr.
    expect(res.stdout).not.toContain('metrics');
    expect(res.stdout.trim().split('\n').at(-1)).toMatch(/^full completed — report sha256:[0-9a-f]{64}$/);
    expect(res.stderr).toMatch(/^full +\[█{24}\] +300\/300 +100% +\d+\/s +ETA 0s +errors 0 +completed$/m);
    expect(res.stderr).toMatch(/^full: monitor-test\.r1\.[0-9a-f]{8} — 300 items, 1 worker\(s\)$/m);
    expect(res.stderr).not.toContain('\u001b[');
    // The endpoint is gone with the run.
    await expect(fetch(url)).rejects.toThrow();
    await db.drop();
  });

  it('--json prints only JSON lines on stdout: the lifecycle events, then the result', async () => {
    const N = 100;
    const { db, plan, runId, reports, env } = await workspace(N, 100_000);
    const cli = startCli(['--json', 'run', plan, '--stage', 'full', '--reports', reports, '--metrics-port', '0'], env);
    const res = await cli.done;
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout.split('\n');
    expect(lines.pop()).toBe('');
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, any>);
    const events = parsed.filter((p) => p.type);
    expect(parsed.filter((p) => !p.type)).toEqual([expect.objectContaining({ level: 'result', run: runId, outcome: 'completed', exitCode: 0 })]);
    expect(events.map((e) => e.type)).toEqual(['start', ...Array(N / 20).fill('chunk'), 'finished']);
    for (const e of events) {
      expect(Object.keys(e).slice(0, 4)).toEqual(['type', 'at', 'run', 'stage']);
      expect(e).toMatchObject({ run: runId, stage: 'full' });
      expect(Number.isNaN(Date.parse(e.at))).toBe(false);
    }
    expect(events[0]).toMatchObject({ total: N, workers: 1, manifest: expect.stringMatching(/^sha256:/) });
    const chunks = events.filter((e) => e.type === 'chunk');
    expect(chunks.reduce((n, c) => n + c.items + c.failed, 0)).toBe(N);
    for (const c of chunks) expect(c).toMatchObject({ total: N, done: expect.any(Number), seq: expect.any(Number) });
    const finished = events.at(-1)!;
    expect(finished).toMatchObject({ outcome: 'completed', done: N, failed: 0, total: N, durationMs: expect.any(Number) });
    expect(finished.report).toMatchObject({ hash: expect.stringMatching(/^sha256:/), json: join(reports, `${runId}.full.report.json`), md: expect.any(String), html: expect.any(String) });
    // On stderr the metrics URL, and no progress line or event text in --json mode.
    expect(res.stderr).toMatch(/^metrics\s+http:\/\/127\.0\.0\.1:\d+\/metrics$/m);
    expect(res.stderr).not.toMatch(/\[[█░]+\]|full: |items, 1 worker/);
    await db.drop();
  });
});
