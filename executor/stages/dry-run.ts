/**
 * The dry-run: count, then run the handler over every item with every effect captured and none
 * applied. Nothing is written to any target; the state store only receives the run record and
 * the report. For sql effects with a `preview` query, the first few calls per effect run the
 * statement inside a transaction that is rolled back, reading the preview row before and after
 * it, and show the change as a unified diff; where the target refuses the statement (a
 * read-only replica), the after row is estimated from the effect's arguments and says so. Reads page by page, so memory does not grow with the window.
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
    const applier = this.run.appliers.get(effect.name)!;
    const seen = await applier.previewChange!(args);
    const base = { effect: effect.name, itemKey: item.key, args: jsonable(args) };
    if (seen.after !== undefined) {
      // No row (before: the effect would insert it; after: it would delete it) is [], not unknown.
      this.previews.push({ ...base, before: plainRows(seen.before) ?? [], after: plainRows(seen.after) ?? [], diff: previewDiff(seen.before, seen.after), method: 'executed' });
      return;
    }
    const after = overlay(seen.before, args, new Set(applier.sql?.preview?.params ?? []));
    const note = `the target refused the statement (${seen.error ?? 'unknown error'})`;
    if (after === undefined) {
      this.previews.push({ ...base, before: plainRows(seen.before) ?? [], after: null, diff: '', note: `${note}, and no argument names a column of the preview row` });
      return;
    }
    this.previews.push({ ...base, before: plainRows(seen.before) ?? [], after: plainRows(after) ?? [], diff: previewDiff(seen.before, after), method: 'estimated', note });
  }
}

/**
 * The row as the effect would probably leave it, when the target would not run the statement:
 * columns named like an argument take its value. Undefined when no argument but those that find
 * the row names a column (nothing can be said).
 */
function overlay(before: Record<string, unknown> | null, args: Record<string, unknown>, lookup: Set<string>): Record<string, unknown> | undefined {
  if (!before) return { ...args };
  // Arguments that find the row (the preview's own parameters, such as :id) say nothing of what changes.
  const named = Object.keys(before).filter((k) => k in args && !lookup.has(k));
  if (!named.length) return undefined;
  const after: Record<string, unknown> = { ...before };
  // A value equal to the row's but for its JSON type (bigint columns read as text) is no change.
  for (const k of named) if (String(after[k]) !== String(args[k])) after[k] = args[k];
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
