/**
 * How a running stage shows itself on the command line.
 *
 * - `--json`: stdout carries one JSON event per line (start, chunk, throttled, resumed, stalled,
 *   paused, aborted, error, finished; see executor/monitor/events.ts) and nothing else; warnings
 *   and errors go to stderr as JSON lines.
 * - otherwise: the progress display on stderr (one line redrawn in place on a terminal, a plain
 *   line now and then elsewhere; `NO_COLOR` respected), with lifecycle lines and warnings printed
 *   above it, so stdout keeps only the command's result.
 *
 * Events from the stage driver are completed here with what the display knows (done / total
 * after a chunk, how long a pause lasted, the report's paths), so every line stands on its own.
 */
import { createEventWriter, createProgressDisplay, etaSeconds, type ProgressDisplay, type ProgressSnapshot as DisplaySnapshot, type ProgressStream } from '../executor/monitor/index.js';
import type { ProgressSnapshot, RunEvent, RunEvents } from '../executor/stages/events.js';
import type { Output } from './output.js';

export interface CliRunEvents extends RunEvents {
  /** Ends the progress line (call before printing the result, and on errors). */
  close(): void;
}

export interface CliRunEventsOptions {
  stdout?: ProgressStream;
  stderr?: ProgressStream;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

export function cliRunEvents(out: Output, opts: CliRunEventsOptions = {}): CliRunEvents {
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  const now = opts.now ?? Date.now;
  const writer = out.json ? createEventWriter(stdout, { now }) : undefined;
  let display: ProgressDisplay | undefined;
  const progressDisplay = (): ProgressDisplay => (display ??= createProgressDisplay(stderr, { env: opts.env ?? process.env, now }));
  let last: ProgressSnapshot | undefined;
  /** Items committed by this process since the last snapshot, so a chunk event's `done` is current. */
  let sinceSnapshot = 0;
  let startedAt: number | undefined;
  let pausedAt: number | undefined;

  const line = (text: string): void => {
    if (out.json) return;
    progressDisplay().log(text);
  };

  const complete = (e: RunEvent): RunEvent => {
    switch (e.type) {
      case 'start':
        startedAt = now();
        return e;
      case 'chunk': {
        sinceSnapshot += Number(e.items ?? 0) + Number(e.failed ?? 0);
        if (!last) return e;
        const done = Math.min(last.total, last.done + sinceSnapshot);
        return { ...e, done, total: last.total, ratePerSecond: round(last.ratePerSecond), etaSeconds: etaSeconds(last.total - done, last.ratePerSecond) };
      }
      case 'paused':
        pausedAt = now();
        return e;
      case 'resumed': {
        if (e.from !== undefined) return e;
        const afterMs = pausedAt === undefined ? null : now() - pausedAt;
        pausedAt = undefined;
        return { ...e, from: 'paused', afterMs };
      }
      case 'aborted':
        return last ? { ...e, done: last.done, total: last.total } : e;
      case 'finished': {
        const { files, report, ...rest } = e as RunEvent & { files?: Record<string, string>; report?: unknown };
        return {
          ...rest,
          ...(last ? { done: last.done, failed: last.failed, total: last.total } : {}),
          ...(startedAt !== undefined ? { durationMs: now() - startedAt } : {}),
          report: typeof report === 'string' ? { hash: report, ...(files ?? {}) } : (report ?? null),
        };
      }
      default:
        return e;
    }
  };

  return {
    event(raw) {
      const e = complete(raw);
      if (writer) {
        writer.emit(e);
        return;
      }
      if (e.type === 'finished' || e.type === 'aborted') {
        if (last) progressDisplay().finish({ ...toDisplay(last), status: e.type === 'aborted' ? 'aborted' : String(e.outcome) });
        else display?.finish();
      }
      const text = describe(e);
      if (text) line(text);
    },
    progress(p) {
      last = p;
      sinceSnapshot = 0;
      if (!out.json) progressDisplay().update(toDisplay(p));
    },
    log(level, message, fields) {
      if (level === 'info' && fields?.item !== undefined) return;
      if (out.json) {
        if (level !== 'info') stderr.write(`${JSON.stringify({ level, message, ...fields })}\n`);
        return;
      }
      line(`${level === 'info' ? '' : `${level}: `}${message}${fields?.item !== undefined ? ` (item ${String(fields.item)})` : ''}`);
    },
    close() {
      display?.finish();
    },
  };
}

function toDisplay(p: ProgressSnapshot): DisplaySnapshot {
  return { ...p, stage: p.stage as DisplaySnapshot['stage'] };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** The line a lifecycle event prints on a terminal (chunks and item errors only show in the progress line). */
function describe(e: RunEvent): string | undefined {
  switch (e.type) {
    case 'start':
      return `${e.stage}: ${e.run} — ${String(e.total)} items${e.workers ? `, ${String(e.workers)} worker(s)` : ''}`;
    case 'finished':
      return `${e.stage}: ${String(e.outcome)}${e.report && typeof e.report === 'object' ? ` — report ${String((e.report as { hash: string }).hash)}` : ''}`;
    case 'aborted':
      return `${e.stage}: stopped (${String(e.reason)}: ${String(e.detail)}) — the state is consistent; run it again to resume`;
    case 'paused':
      return `${e.stage}: paused — in-flight items finish and their chunks are given back; reprise resume ${e.run} continues`;
    case 'resumed':
      return `${e.stage}: resumed${e.from ? ` after ${String(e.from)}` : ''}`;
    // Chunks and item errors show in the progress line; throttles and stalls have their own warning line.
    case 'chunk':
    case 'error':
    case 'throttled':
    case 'stalled':
      return undefined;
    default:
      return `${e.stage}: ${e.type}`;
  }
}
