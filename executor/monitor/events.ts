/**
 * `--json` mode: one JSON object per line for pipelines, and nothing else on that stream. Every
 * event has `type`, `at` (ISO 8601 UTC), `run` and `stage`, then the fields of its type.
 */
import type { ReportStage } from '../../schema/report.types.js';

interface EventBase {
  run: string;
  stage: ReportStage;
}

/** The stage starts (after the count guard). The run id names the plan and revision. */
export interface StartEvent extends EventBase {
  type: 'start';
  manifest: string;
  /** Items the stage will process. */
  total: number;
  /** Workers in this process, and the process's id (`host:pid:random`). */
  workers?: number;
  process?: string;
}

/** A chunk committed. */
export interface ChunkEvent extends EventBase {
  type: 'chunk';
  seq: number;
  /** Items of the chunk that succeeded, and those that failed after their retries. */
  items: number;
  failed: number;
  /** Stage totals after this chunk (every process of the run; as of the last second). */
  done: number;
  total: number;
  ratePerSecond: number;
  etaSeconds: number | null;
}

/** A protect probe went over its limit: the run is held at zero items per second. */
export interface ThrottledEvent extends EventBase {
  type: 'throttled';
  probe: string;
  /** The probe's last value and its limit (null when unknown). */
  value: number | null;
  max: number | null;
}

/** Processing goes on again after a throttle, a pause or a stall. */
export interface ResumedEvent extends EventBase {
  type: 'resumed';
  from: 'throttled' | 'paused' | 'stalled';
  /** How long it lasted. */
  afterMs: number;
}

/**
 * No committed progress for `stallAfter`. `action` is the plan's onStall, already taken (the
 * pause flag set, or the stop begun); `webhook` says whether an alert is being POSTed (its
 * delivery is logged).
 */
export interface StalledEvent extends EventBase {
  type: 'stalled';
  lastProgressAt: string;
  stalledForSeconds: number;
  action: 'alert' | 'pause' | 'abort';
  webhook: boolean;
}

/** The stage paused: its control flag is `pause` (reprise pause, or onStall: pause; the run's events say who). */
export interface PausedEvent extends EventBase {
  type: 'paused';
  by?: string;
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

/**
 * The stage ended and its report is written (`joined`: another process of the run completed the
 * stage and wrote the report; `already-completed`: nothing was left to do). Counts are the run's
 * as of the end; `durationMs` is this process's.
 */
export interface FinishedEvent extends EventBase {
  type: 'finished';
  outcome: 'completed' | 'validation-failed' | 'joined' | 'already-completed';
  done?: number;
  failed?: number;
  total?: number;
  durationMs?: number;
  report: { hash: string; json?: string; md?: string; html?: string } | null;
}

export type RunEvent = StartEvent | ChunkEvent | ThrottledEvent | ResumedEvent | StalledEvent | PausedEvent | AbortedEvent | ErrorEvent | FinishedEvent;
export type RunEventType = RunEvent['type'];

/** Every event type, in lifecycle order. */
export const RUN_EVENT_TYPES: readonly RunEventType[] = ['start', 'chunk', 'throttled', 'resumed', 'stalled', 'paused', 'aborted', 'error', 'finished'];

/** An event of a type this module does not describe (the executor's `preflight`, say): written as is. */
export interface OtherEvent {
  type: string;
  run: string;
  stage: string;
  [field: string]: unknown;
}

export interface EventWriter {
  /** Writes one event as one line. */
  emit(event: RunEvent | OtherEvent): void;
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
