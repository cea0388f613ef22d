#!/usr/bin/env node
/**
 * One worker process of a benchmark: `node bench/lib/stage-worker.mjs <plan> <stage> <workers>`
 * runs the stage with runStage from dist/ (as a library caller does: no approval preflight; the
 * benchmarks measure processing, not sign-off) and prints its outcome as one JSON line, with the
 * time runStage took. SIGTERM stops the stage cleanly (exit 4), as it does for `reprise run`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStage } from '../../dist/executor/stages/run.js';

const [plan, stage = 'full', workers = '1'] = process.argv.slice(2);
const ac = new AbortController();
process.on('SIGTERM', () => ac.abort());
process.on('SIGINT', () => ac.abort());
const started = performance.now();
const out = await runStage({
  plan,
  stage,
  stateUrl: process.env.REPRISE_STATE ?? 'unused://',
  workers: Number(workers),
  reportsDir: mkdtempSync(join(tmpdir(), 'reprise-bench-reports-')),
  signal: ac.signal,
});
const ms = performance.now() - started;
const r = out.report;
process.stdout.write(`${JSON.stringify({
  runId: out.runId,
  outcome: out.outcome,
  exitCode: out.exitCode,
  stop: out.stop ?? null,
  ms,
  report: r ? { durationMs: r.durationMs, processed: r.counts.processed, failed: r.counts.failed, throttle: r.throttle, startedAt: r.startedAt, finishedAt: r.finishedAt } : null,
})}\n`);
process.exitCode = out.exitCode;
