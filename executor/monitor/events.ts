/**
 * `--json` mode: one JSON object per line for pipelines, and nothing else on that stream. Every
 * event has `type`, `at` (ISO 8601 UTC), `run` and `stage`, then the fields of its type.
 */
import type { ReportStage } from '../../schema/report.types.js';

interface EventBase {
  run: string;
  stage: ReportStage;
}

/** The stage starts (after the count guard). */
export interface StartEvent extends EventBase {
  type: 'start';
  plan: string;
  revision: number;
  manifest: string;
  /** Items the stage will process. */
  total: number;
  workers?: number;
}

/** A chunk committed. */
export interface ChunkEvent extends EventBase {
  type: 'chunk';
  seq: number;
  /** Items in the chunk, and how many of them failed. */
  items: number;
  failed: number;
  /** Stage totals after this chunk. */
  done: number;
  total: number;
  ratePerSecond: number;
  etaSeconds: number | null;
}

/** A protect probe went over its limit: the run is held at zero items per second. */
export interface ThrottledEvent extends EventBase {
  type: 'throttled';
  probe: string;
  value: number;
  max: number;
}

/** Processing goes on again after a throttle, a pause or a stall. */
export interface ResumedEvent extends EventBase {
  type: 'resumed';
  from: 'throttled' | 'paused' | 'stalled';
  /** How long it lasted. */
  afterMs: number;
}

/** No committed progress for `stallAfter`; `action` is the plan's onStall. */
export interface StalledEvent extends EventBase {
  type: 'stalled';
  lastProgressAt: string;
  stalledForSeconds: number;
  action: 'alert' | 'pause' | 'abort';
  /** Whether the alert webhook accepted the alert (null when none is configured). */
  alerted: boolean | null;
}

/** The stage paused (reprise pause, or onStall: pause). */
export interface PausedEvent extends EventBase {
  type: 'paused';
  by: string;
  reason?: string;
}

/** The stage stopped cleanly before the end (exit code 4). */
export interface AbortedEvent extends EventBase {
  type: 'aborted';
  reason: string;
  detail: string;
  done: number;
  total: number;
}

/** An item failed an attempt (`final` when no retry is left), or the run hit an error. */
export interface ErrorEvent extends EventBase {
  type: 'error';
  message: string;
  itemKey?: string;
  attempt?: number;
  final?: boolean;
  code?: string;
}

/** The stage ended; the report is written. */
export interface FinishedEvent extends EventBase {
  type: 'finished';
  outcome: 'completed' | 'aborted' | 'paused' | 'failed' | 'validation-failed';
  done: number;
  failed: number;
  total: number;
  durationMs: number;
  report: { hash: string; json: string; md: string; html?: string } | null;
}

export type RunEvent = StartEvent | ChunkEvent | ThrottledEvent | ResumedEvent | StalledEvent | PausedEvent | AbortedEvent | ErrorEvent | FinishedEvent;
export type RunEventType = RunEvent['type'];

/** Every event type, in lifecycle order. */
export const RUN_EVENT_TYPES: readonly RunEventType[] = ['start', 'chunk', 'throttled', 'resumed', 'stalled', 'paused', 'aborted', 'error', 'finished'];

export interface EventWriter {
  /** Writes one event as one line. */
  emit(event: RunEvent): void;
}

export interface EventWriterOptions {
  /** Clock for `at` (epoch ms). @defaultValue Date.now */
  now?: () => number;
}

/**
 * Writes events to `stream`, one JSON object per line (`type` and `at` first). Values JSON
 * cannot hold are written as text (bigints as digits, errors as their message); newlines in
 * strings are escaped by JSON, so an event is always exactly one line.
 */
export function createEventWriter(stream: { write(chunk: string): unknown }, opts: EventWriterOptions = {}): EventWriter {
  const now = opts.now ?? Date.now;
  return {
    emit(event) {
      const { type, ...fields } = event;
      stream.write(`${JSON.stringify({ type, at: new Date(now()).toISOString(), ...fields }, jsonSafe)}\n`);
    },
  };
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return value.message;
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  return value;
}
