import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEventWriter, RUN_EVENT_TYPES, type RunEvent } from '../../executor/monitor/events.js';
import { createProgressDisplay, formatProgressLine, progressMode, type ProgressSnapshot } from '../../executor/monitor/progress.js';
import { etaSeconds, RateEstimator } from '../../executor/monitor/rate.js';

const snap = (over: Partial<ProgressSnapshot> = {}): ProgressSnapshot => ({
  runId: 'orders-tax-recompute.r1.0123abcd',
  stage: 'full',
  status: 'running',
  done: 1234,
  total: 5000,
  failed: 3,
  ratePerSecond: 183.4,
  etaSeconds: 21,
  throttle: null,
  ...over,
});

class Sink {
  chunks: string[] = [];
  constructor(
    readonly isTTY: boolean,
    readonly columns = 200,
  ) {}
  write(s: string): boolean {
    this.chunks.push(s);
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
}

// eslint-disable-next-line no-control-regex
const COLOR = /\u001b\[(?:[0-9;]*)m/;

describe('formatProgressLine', () => {
  it('shows bar, done/total, percent, rate, ETA, errors, throttle and status', () => {
    expect(formatProgressLine(snap())).toBe('full     [██████░░░░░░░░░░░░░░░░░░]  1,234/5,000  24.7%  183/s  ETA 21s  errors 3  running');
    expect(formatProgressLine(snap({ status: 'throttled', throttle: { probe: 'replica-lag', value: 7.23 }, ratePerSecond: 0, etaSeconds: null, failed: 0 }))).toBe(
      'full     [██████░░░░░░░░░░░░░░░░░░]  1,234/5,000  24.7%  0/s  ETA –  errors 0  throttled replica-lag=7.2  throttled',
    );
    expect(formatProgressLine(snap({ done: 5000, etaSeconds: 0, status: 'completed' }))).toContain('[████████████████████████]  5,000/5,000   100%');
  });

  it('colours only when asked, and fits the terminal width', () => {
    expect(formatProgressLine(snap())).not.toMatch(COLOR);
    const colored = formatProgressLine(snap({ status: 'stalled' }), { color: true });
    expect(colored).toMatch(COLOR);
    expect(colored).toContain('\u001b[31mstalled\u001b[0m');
    const narrow = formatProgressLine(snap(), { width: 40 });
    expect([...narrow]).toHaveLength(40);
    expect(narrow.endsWith('…')).toBe(true);
    const narrowColored = formatProgressLine(snap(), { width: 40, color: true });
    expect([...narrowColored.replace(/\u001b\[[0-9;]*m/g, '')]).toHaveLength(40);
  });
});

describe('progress display', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('on a TTY redraws one line in place, at most 4 times a second, latest snapshot wins', () => {
    const out = new Sink(true);
    const d = createProgressDisplay(out, { env: {} });
    for (let i = 1; i <= 10; i++) {
      d.update(snap({ done: i }));
      vi.advanceTimersByTime(20);
    }
    expect(out.chunks).toHaveLength(1); // the first, at once
    vi.advanceTimersByTime(250);
    expect(out.chunks).toHaveLength(2);
    expect(out.chunks[1]).toMatch(/^\r\u001b\[2K/);
    expect(out.chunks[1]).toContain(' 10/5,000 ');
    expect(out.text).not.toContain('\n');
    expect(out.text).toMatch(COLOR);
    d.log('warning: probe replica-lag is slow');
    expect(out.chunks.at(-2)).toBe('\r\u001b[2Kwarning: probe replica-lag is slow\n');
    expect(out.chunks.at(-1)).toMatch(/^\r\u001b\[2K.* 10\/5,000 /);
    d.finish(snap({ done: 5000, status: 'completed', etaSeconds: 0 }));
    expect(out.text.endsWith('completed\u001b[0m\n')).toBe(true);
    const n = out.chunks.length;
    d.update(snap());
    vi.advanceTimersByTime(1000);
    expect(out.chunks).toHaveLength(n);
  });

  it('respects NO_COLOR: no colours, still redrawn in place', () => {
    const out = new Sink(true);
    const d = createProgressDisplay(out, { env: { NO_COLOR: '1' } });
    d.update(snap());
    vi.advanceTimersByTime(300);
    d.update(snap({ done: 2000 }));
    expect(out.chunks).toHaveLength(2);
    expect(out.chunks.every((c) => c.startsWith('\r\u001b[2K'))).toBe(true);
    expect(out.text.replace(/\r\u001b\[2K/g, '')).not.toMatch(/\u001b/);
  });

  it('not on a TTY: a plain line every N seconds and on every status change', () => {
    const out = new Sink(false);
    const d = createProgressDisplay(out, { plainEveryMs: 10_000 });
    d.update(snap({ done: 1 }));
    for (let i = 2; i < 40; i++) {
      vi.advanceTimersByTime(500);
      d.update(snap({ done: i }));
    }
    // t = 0 and t = 10 s (19 s elapsed in all)
    expect(out.chunks).toHaveLength(2);
    d.update(snap({ done: 40, status: 'paused' }));
    expect(out.chunks).toHaveLength(3);
    d.finish();
    expect(out.chunks).toHaveLength(4);
    for (const c of out.chunks) {
      expect(c.endsWith('\n')).toBe(true);
      expect(c).not.toMatch(/[\r\u001b]/);
    }
    expect(out.chunks[2]).toContain('paused');
  });

  it('picks the mode: json, tty, plain', () => {
    expect(progressMode({ isTTY: true }, { json: true })).toBe('json');
    expect(progressMode({ isTTY: true }, { json: false })).toBe('tty');
    expect(progressMode({}, { json: false })).toBe('plain');
  });
});

describe('JSON events', () => {
  it('writes one JSON object per line with type and at first, and nothing else', () => {
    const out = new Sink(false);
    const w = createEventWriter(out, { now: () => Date.parse('2026-11-13T09:00:00Z') });
    const base = { run: 'orders-tax-recompute.r1.0123abcd', stage: 'full' as const };
    const events: RunEvent[] = [
      { type: 'start', ...base, manifest: `sha256:${'0'.repeat(64)}`, total: 48_113, workers: 2 },
      { type: 'chunk', ...base, seq: 1, items: 500, failed: 1, done: 500, total: 48_113, ratePerSecond: 199.5, etaSeconds: 239 },
      { type: 'throttled', ...base, probe: 'replica-lag', value: 7.2, max: 5 },
      { type: 'resumed', ...base, from: 'throttled', afterMs: 12_000 },
      { type: 'stalled', ...base, lastProgressAt: '2026-11-13T08:55:00.000Z', stalledForSeconds: 300, action: 'pause', webhook: true },
      { type: 'paused', ...base, by: 'onStall' },
      { type: 'error', ...base, itemKey: 'a\nb', attempt: 2, final: false, message: 'line one\nline two "quoted"' },
      { type: 'aborted', ...base, reason: 'error-rate', detail: '11 of the last 77 items failed', done: 77, total: 48_113 },
      { type: 'finished', ...base, outcome: 'completed', done: 77, failed: 11, total: 48_113, durationMs: 12_345, report: { hash: `sha256:${'1'.repeat(64)}`, json: 'reports/x.json', md: 'reports/x.md' } },
    ];
    for (const e of events) w.emit(e);
    const lines = out.text.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(events.length);
    const parsed = lines.map((l) => JSON.parse(l));
    expect(parsed.map((p) => p.type).sort()).toEqual([...RUN_EVENT_TYPES].sort());
    for (const p of parsed) {
      expect(Object.keys(p).slice(0, 4)).toEqual(['type', 'at', 'run', 'stage']);
      expect(p.at).toBe('2026-11-13T09:00:00.000Z');
    }
    expect(parsed[6].message).toBe('line one\nline two "quoted"');
  });

  it('writes values JSON cannot hold as text', () => {
    const out = new Sink(false);
    createEventWriter(out).emit({ type: 'error', run: 'r', stage: 'full', message: 'x', code: 12n as unknown as string, attempt: Number.NaN });
    expect(JSON.parse(out.text)).toMatchObject({ code: '12', attempt: null });
  });
});

describe('rate and ETA', () => {
  it('measures items per second over the last 10 s window', () => {
    let t = 0;
    const r = new RateEstimator({ now: () => t });
    expect(r.rate()).toBe(0);
    for (; t < 20_000; t += 100) r.add(10); // 100 items/s for 20 s
    expect(r.rate()).toBeGreaterThan(97);
    expect(r.rate()).toBeLessThan(103);
    t += 5_000; // nothing for 5 s: about half the window is empty
    expect(r.rate()).toBeGreaterThan(45);
    expect(r.rate()).toBeLessThan(55);
    t += 10_000;
    expect(r.rate()).toBe(0);
  });

  it('is sensible in the first seconds of a run', () => {
    let t = 1_000_000;
    const r = new RateEstimator({ now: () => t });
    for (let i = 0; i < 30; i++) {
      t += 100;
      r.add(20);
    }
    expect(r.rate()).toBeCloseTo(200, 0); // 600 items in 3 s, not 600 / 10 s
  });

  it('gives an ETA from the rate, unknown at rate 0', () => {
    expect(etaSeconds(1000, 200)).toBe(5);
    expect(etaSeconds(1001, 200)).toBe(6);
    expect(etaSeconds(10, 0)).toBeNull();
    expect(etaSeconds(0, 0)).toBe(0);
  });
});
