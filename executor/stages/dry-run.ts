/**
 * The dry-run: count, then run the handler over every item with every effect captured and none
 * applied. Nothing is written to any target; the state store only receives the run record and
 * the report. For sql effects with a `preview` query, the first few calls per effect read the
 * rows as they are and show the rows as they would be (the effect's arguments laid over the
 * current row) as a unified diff. Reads page by page, so memory does not grow with the window.
 */
import type { Effect } from '../../schema/manifest.types.js';
import type { EffectPreview, Report } from '../../schema/report.types.js';
import { EffectsGate, type CaptureSink } from '../effects/gate.js';
import { FailureSampler } from '../monitor/error-budget.js';
import { emptyEffectCounts, finalizeReport, plainRows, previewDiff, ThroughputRecorder, type ReportBody } from '../reports/index.js';
import type { Item } from '../source/types.js';
import type { OpenedRun } from './open.js';
import type { RunEvents } from './events.js';
import type { Fingerprint } from '../targets.js';

const PREVIEWS_PER_EFFECT = 10;
/** Failures sampled for the report: the first half and the most recent half. */
const ERROR_SAMPLES = 20;

class Collector implements CaptureSink {
  readonly counts = new Map<string, number>();
  readonly previews: EffectPreview[] = [];
  private readonly perEffect = new Map<string, number>();
  constructor(private readonly run: OpenedRun) {}

  async capture(effect: Effect, item: Item, args: Record<string, unknown>): Promise<void> {
    this.counts.set(effect.name, (this.counts.get(effect.name) ?? 0) + 1);
    if (effect.kind !== 'sql' || !effect.preview) return;
    const n = this.perEffect.get(effect.name) ?? 0;
    if (n >= PREVIEWS_PER_EFFECT) return;
    this.perEffect.set(effect.name, n + 1);
    const before = await this.run.appliers.get(effect.name)!.readBefore!(args);
    const after = overlay(before, args);
    // No row yet (the effect would insert it): `before` is empty, not unknown.
    this.previews.push({ effect: effect.name, itemKey: item.key, args: jsonable(args), before: plainRows(before) ?? [], after: plainRows(after) ?? [], diff: previewDiff(before, after) });
  }
}

/** The row as the effect would leave it: columns named like an argument take its value. */
function overlay(before: Record<string, unknown> | null, args: Record<string, unknown>): Record<string, unknown> {
  if (!before) return { ...args };
  const after: Record<string, unknown> = { ...before };
  for (const k of Object.keys(before)) if (k in args) after[k] = args[k];
  return after;
}

function jsonable(v: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)));
}

export interface DryRunResult {
  report: Report;
  failed: number;
}

export async function dryRun(run: OpenedRun, count: { value: number; countedAt: string; outsideWindow: number }, fingerprints: Record<string, Fingerprint>, events: RunEvents, signal?: AbortSignal): Promise<DryRunResult> {
  const { plan, runId } = run;
  const started = Date.now();
  const collector = new Collector(run);
  const gate = new EffectsGate({ plan, runId, stage: 'dry-run', appliers: run.appliers, dedupe: run.dedupe, transactionalConnection: null, capture: collector });
  const throughput = new ThroughputRecorder({ startedAt: started });
  const errors = new FailureSampler({ maxSamples: ERROR_SAMPLES });
  let processed = 0;
  let failed = 0;
  const concurrency = plan.rate.concurrency;
  let lastProgress = 0;
  const progress = (): void => {
    const now = Date.now();
    lastProgress = now;
    const rate = processed / Math.max(0.001, (now - started) / 1000);
    events.progress({ runId, stage: 'dry-run', status: 'running', done: processed, total: count.value, failed, ratePerSecond: rate, etaSeconds: rate > 0 ? Math.max(0, (count.value - processed) / rate) : null, throttle: null });
  };

  for await (const page of run.source.pages(plan.rate.chunkSize)) {
    if (signal?.aborted) break;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < page.length) {
        const item = page[next++]!;
        // The item's own timeout applies in the dry-run too: a handler that blocks fails its item, not the run.
        const abort = new AbortController();
        const timer = setTimeout(() => abort.abort(new Error(`timed out after ${plan.processing.timeoutMs} ms`)), plan.processing.timeoutMs);
        const { effects } = gate.forItem(item, 1, abort.signal);
        try {
          await Promise.race([
            run.handler(item.row, { effects, log: logFor(events, item.key), signal: abort.signal, stage: 'dry-run', runId, attempt: 1, itemKey: item.key }),
            new Promise<never>((_, reject) => abort.signal.addEventListener('abort', () => reject(abort.signal.reason), { once: true })),
          ]);
        } catch (e) {
          failed++;
          errors.add({ itemKey: item.key, attempt: 1, error: e });
        } finally {
          clearTimeout(timer);
        }
        processed++;
        throughput.add(1);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, page.length) }, worker));
    if (Date.now() - lastProgress > 250) progress();
  }
  progress(); // the last page's figures, before the final line reuses them
  const finished = Date.now();
  const body: ReportBody = {
    kind: 'reprise/report@1',
    runId,
    plan: plan.name,
    revision: plan.revision,
    manifest: run.manifest.hash,
    stage: 'dry-run',
    outcome: signal?.aborted ? 'aborted' : 'completed',
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(finished).toISOString(),
    durationMs: finished - started,
    count: { value: count.value, expect: (plan.selection ?? plan.source)!.expect, countedAt: count.countedAt },
    counts: { selected: count.value, processed, succeeded: processed - failed, failed, skippedOutsideWindow: count.outsideWindow, remaining: Math.max(0, count.value - processed) },
    effects: plan.sideEffects.map((e) => ({
      name: e.name,
      kind: e.kind,
      policy: e.backfill,
      delivery: e.delivery,
      live: e.live,
      counts: { ...emptyEffectCounts(), captured: collector.counts.get(e.name) ?? 0 },
    })),
    errors: errors.errors(),
    // The dry-run applies nothing and takes no rate tokens: no protect probe ever holds it.
    throttle: { throttledMs: 0, episodes: [] },
    throughput: throughput.toJSON(finished),
    validations: [],
    fingerprints: reportFingerprints(fingerprints),
    canary: null,
    preview: collector.previews,
    abort: signal?.aborted ? { reason: 'signal', detail: 'interrupted (SIGINT/SIGTERM)' } : null,
    workers: 1,
  };
  return { report: finalizeReport(body), failed };
}

export function reportFingerprints(f: Record<string, Fingerprint>): Report['fingerprints'] {
  const out: Report['fingerprints'] = {};
  for (const [k, v] of Object.entries(f)) out[k] = v.kind === 'postgres' ? { kind: 'postgres', systemIdentifier: v.systemIdentifier ?? 'unavailable', database: v.database } : v;
  return out;
}

export function logFor(events: RunEvents, itemKey: string): { info: (m: string, f?: Record<string, unknown>) => void; warn: (m: string, f?: Record<string, unknown>) => void; error: (m: string, f?: Record<string, unknown>) => void } {
  return {
    info: (m, f) => events.log('info', m, { item: itemKey, ...f }),
    warn: (m, f) => events.log('warn', m, { item: itemKey, ...f }),
    error: (m, f) => events.log('error', m, { item: itemKey, ...f }),
  };
}
