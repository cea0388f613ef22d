/**
 * What a person watching `reprise run` sees. On a terminal: one line redrawn in place at most
 * four times a second — bar, done/total, percentage, rate, ETA, errors, throttle state, stage.
 * Elsewhere (CI logs): a plain line every few seconds and whenever the status changes. With
 * `--json` the executor writes events instead (./events.ts) and uses no progress display.
 * `NO_COLOR` (any non-empty value) removes colours but not the in-place redraw.
 */
import { formatCount, formatElapsed, formatPercent, formatRate, truncate } from '../reports/format.js';

export { RateEstimator, etaSeconds, type RateEstimatorOptions } from './rate.js';

/** Known run statuses; others are shown as given. */
export type ProgressStatus =
  | 'counting'
  | 'running'
  | 'throttled'
  | 'paused'
  | 'stalled'
  | 'validating'
  | 'aborting'
  | 'completed'
  | 'aborted'
  | 'failed'
  | (string & {});

/** One observation of a running stage. */
export interface ProgressSnapshot {
  runId: string;
  stage: 'dry-run' | 'canary' | 'full' | 'reverse';
  status: ProgressStatus;
  /** Items finished in this stage (failed ones included). */
  done: number;
  /** Items the stage will process. */
  total: number;
  /** Items that failed after their retries. */
  failed: number;
  /** Current rate (see RateEstimator). */
  ratePerSecond: number;
  /** Seconds left at the current rate, or null when unknown (rate 0). */
  etaSeconds: number | null;
  /** The probe holding the run at zero, with its last value (null when unknown), or null. */
  throttle: { probe: string; value: number | null } | null;
}

export type ProgressMode = 'tty' | 'plain' | 'json';

/** Which display fits: JSON events with `--json`, in-place on a TTY, else plain lines. */
export function progressMode(stream: { isTTY?: boolean }, opts: { json: boolean }): ProgressMode {
  if (opts.json) return 'json';
  return stream.isTTY ? 'tty' : 'plain';
}

/** Whether colours are allowed: a TTY and no (non-empty) `NO_COLOR`. */
export function colorAllowed(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && !env.NO_COLOR;
}

const ANSI = { reset: '\u001b[0m', bold: '\u001b[1m', dim: '\u001b[2m', red: '\u001b[31m', green: '\u001b[32m', yellow: '\u001b[33m', cyan: '\u001b[36m' };

export interface FormatOptions {
  /** ANSI colours. @defaultValue false */
  color?: boolean;
  /** Columns available; the line is cut to fit (a wrapped line cannot be redrawn in place). @defaultValue 120 */
  width?: number;
  /** Bar width in characters. @defaultValue 24 */
  barWidth?: number;
}

/**
 * The progress line:
 * `canary   [██████████░░░░░░░░░░░░░░]  1,234/5,000  24.7%  183/s  ETA 20s  errors 3  throttled replica-lag=7.2  running`
 */
export function formatProgressLine(s: ProgressSnapshot, opts: FormatOptions = {}): string {
  const color = opts.color ?? false;
  const paint = (code: string, text: string): string => (color ? `${code}${text}${ANSI.reset}` : text);
  const barWidth = opts.barWidth ?? 24;
  const ratio = s.total > 0 ? Math.min(1, s.done / s.total) : s.status === 'completed' ? 1 : 0;
  const filled = Math.round(ratio * barWidth);
  const bar = `[${paint(ANSI.green, '█'.repeat(filled))}${paint(ANSI.dim, '░'.repeat(barWidth - filled))}]`;
  const parts = [
    paint(ANSI.bold, s.stage.padEnd(7)),
    bar,
    `${formatCount(s.done)}/${formatCount(s.total)}`,
    formatPercent(ratio).padStart(5),
    `${formatRate(s.ratePerSecond)}/s`,
    `ETA ${s.etaSeconds === null ? '–' : s.etaSeconds <= 0 ? '0s' : formatElapsed(Math.ceil(s.etaSeconds) * 1000)}`,
    s.failed > 0 ? paint(ANSI.red, `errors ${formatCount(s.failed)}`) : 'errors 0',
  ];
  if (s.throttle) parts.push(paint(ANSI.yellow, `throttled ${s.throttle.probe}${s.throttle.value === null ? '' : `=${roundValue(s.throttle.value)}`}`));
  parts.push(paintStatus(s.status, paint));
  const line = parts.join('  ');
  return fit(line, opts.width ?? 120, color);
}

function paintStatus(status: string, paint: (code: string, text: string) => string): string {
  switch (status) {
    case 'running':
    case 'completed':
      return paint(ANSI.green, status);
    case 'throttled':
    case 'paused':
    case 'validating':
    case 'counting':
      return paint(ANSI.yellow, status);
    case 'stalled':
    case 'aborting':
    case 'aborted':
    case 'failed':
      return paint(ANSI.red, status);
    default:
      return status;
  }
}

function roundValue(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) < 10 ? 1 : 0);
}

/** Cuts a line to `width` visible columns, keeping ANSI sequences intact and closing them. */
function fit(line: string, width: number, color: boolean): string {
  const visible = line.replace(/\u001b\[[0-9;]*m/g, '');
  if ([...visible].length <= width) return line;
  if (!color) return truncate(visible, width);
  let out = '';
  let n = 0;
  for (const token of line.match(/\u001b\[[0-9;]*m|[\s\S]/gu) ?? []) {
    if (token.startsWith('\u001b')) out += token;
    else if (n < width - 1) {
      out += token;
      n++;
    }
  }
  return `${out}…${ANSI.reset}`;
}

/** A writable with what a terminal tells about itself. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressDisplayOptions {
  /** `tty` redraws one line in place; `plain` prints a line now and then. @defaultValue from `stream.isTTY` */
  mode?: 'tty' | 'plain';
  /** Colours (tty only). @defaultValue a TTY and no `NO_COLOR` */
  color?: boolean;
  /** Environment consulted for `NO_COLOR`. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Shortest time between two redraws on a TTY. @defaultValue 250 (4 Hz) */
  minIntervalMs?: number;
  /** Time between two plain lines (a status change prints at once). @defaultValue 10_000 */
  plainEveryMs?: number;
  /** Clock (epoch ms). @defaultValue Date.now */
  now?: () => number;
}

export interface ProgressDisplay {
  /** A new snapshot; drawn now or at the next allowed moment (only the latest is drawn). */
  update(s: ProgressSnapshot): void;
  /** Prints a full line (a warning, a log message) without garbling the progress line. */
  log(line: string): void;
  /** Draws the final state, ends the line, and stops drawing. */
  finish(s?: ProgressSnapshot): void;
}

/** The human progress display for a stage. */
export function createProgressDisplay(stream: ProgressStream, opts: ProgressDisplayOptions = {}): ProgressDisplay {
  const mode = opts.mode ?? (stream.isTTY ? 'tty' : 'plain');
  const color = mode === 'tty' && (opts.color ?? colorAllowed(stream, opts.env ?? process.env));
  const now = opts.now ?? Date.now;
  const minInterval = opts.minIntervalMs ?? 250;
  const plainEvery = opts.plainEveryMs ?? 10_000;
  let latest: ProgressSnapshot | undefined;
  let lastDrawAt = -Infinity;
  let lastStatus: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let onScreen = false;
  let finished = false;

  const width = (): number => Math.max(20, (stream.columns ?? 120) - 1);
  const draw = (): void => {
    timer = undefined;
    if (!latest || finished) return;
    lastDrawAt = now();
    lastStatus = latest.status;
    if (mode === 'tty') {
      stream.write(`\r\u001b[2K${formatProgressLine(latest, { color, width: width() })}`);
      onScreen = true;
    } else {
      stream.write(`${formatProgressLine(latest, { color: false, width: 1000 })}\n`);
    }
  };

  return {
    update(s) {
      if (finished) return;
      latest = s;
      const since = now() - lastDrawAt;
      if (mode === 'plain') {
        if (since >= plainEvery || s.status !== lastStatus) draw();
        return;
      }
      if (since >= minInterval) {
        if (timer) clearTimeout(timer);
        draw();
      } else if (!timer) {
        timer = setTimeout(draw, minInterval - since);
        timer.unref?.();
      }
    },
    log(line) {
      if (mode === 'tty' && onScreen) {
        stream.write(`\r\u001b[2K${line}\n`);
        onScreen = false;
        if (latest && !finished) draw();
      } else {
        stream.write(`${line}\n`);
      }
    },
    finish(s) {
      if (finished) return;
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (s) latest = s;
      if (latest) {
        if (mode === 'tty') stream.write(`\r\u001b[2K${formatProgressLine(latest, { color, width: width() })}\n`);
        else stream.write(`${formatProgressLine(latest, { color: false, width: 1000 })}\n`);
      } else if (onScreen) {
        stream.write('\n');
      }
      onScreen = false;
      finished = true;
    },
  };
}
