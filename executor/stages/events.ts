/**
 * What a run tells the outside world while it works: lifecycle events (one JSON line each in
 * --json mode), progress snapshots (the TTY bar), and log lines. The CLI decides how to show them.
 */

export type RunEventType = 'start' | 'chunk' | 'throttled' | 'resumed' | 'stalled' | 'paused' | 'aborted' | 'finished' | 'error' | 'info' | 'preflight';

export interface RunEvent {
  type: RunEventType;
  run: string;
  stage: string;
  [field: string]: unknown;
}

export interface ProgressSnapshot {
  runId: string;
  stage: string;
  status: string;
  done: number;
  total: number;
  failed: number;
  ratePerSecond: number;
  etaSeconds: number | null;
  throttle: { probe: string; value: number | null } | null;
}

export interface RunEvents {
  event(e: RunEvent): void;
  progress(p: ProgressSnapshot): void;
  log(level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void;
}

/** Prints nothing: for library use and tests. */
export const silentEvents: RunEvents = {
  event: () => undefined,
  progress: () => undefined,
  log: () => undefined,
};
