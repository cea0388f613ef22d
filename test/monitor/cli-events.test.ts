/**
 * cli/run-events.ts: what `reprise run` prints while a stage works — the progress line on a
 * terminal (redrawn in place, colours unless NO_COLOR), plain lines elsewhere, and with --json
 * only completed JSON events on stdout.
 */
import { describe, expect, it } from 'vitest';
import { cliRunEvents } from '../../cli/run-events.js';
import { createOutput, type OutputStreams } from '../../cli/output.js';
import type { ProgressSnapshot } from '../../executor/stages/events.js';

class Sink {
  text = '';
  constructor(readonly isTTY: boolean, readonly columns = 200) {}
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

const streams = (stdout: Sink, stderr: Sink): OutputStreams => ({ stdout, stderr }) as unknown as OutputStreams;

const RUN = 'orders.r1.0123abcd';
const snap = (done: number, extra: Partial<ProgressSnapshot> = {}): ProgressSnapshot => ({
  runId: RUN, stage: 'full', status: 'running', done, total: 1000, failed: 2, ratePerSecond: 100, etaSeconds: (1000 - done) / 100, throttle: null, ...extra,
});

function human(isTTY: boolean, env: NodeJS.ProcessEnv = {}) {
  const stdout = new Sink(false);
  const stderr = new Sink(isTTY);
  let t = 0;
  const out = createOutput(false, streams(stdout, stderr));
  const ev = cliRunEvents(out, { stdout, stderr, env, now: () => (t += 300) });
  return { ev, stdout, stderr };
}

describe('reprise run on a terminal', () => {
  it('redraws one progress line in place, prints lifecycle lines above it, and ends it with the outcome', () => {
    const { ev, stdout, stderr } = human(true);
    ev.event({ type: 'start', run: RUN, stage: 'full', total: 1000, workers: 2 });
    ev.progress(snap(100));
    ev.progress(snap(200, { throttle: { probe: 'replica-lag', value: 7.5 }, status: 'throttled' }));
    ev.log('warn', 'throttled: replica-lag = 7.5 over its limit 5; holding at zero items per second');
    ev.event({ type: 'chunk', run: RUN, stage: 'full', seq: 3, items: 100, failed: 0 });
    ev.progress(snap(1000, { etaSeconds: 0 }));
    ev.event({ type: 'finished', run: RUN, stage: 'full', outcome: 'completed', report: `sha256:${'a'.repeat(64)}`, files: { json: 'r.json', md: 'r.md', html: 'r.html' } });
    ev.close();
    expect(stdout.text).toBe('');
    expect(stderr.text).toContain('\r\u001b[2K');
    expect(stderr.text).toContain('\u001b[32m'); // colour on a TTY without NO_COLOR
    const screen = stderr.text.replace(/\u001b\[[0-9;]*m/g, '');
    expect(screen).toContain('full: orders.r1.0123abcd — 1000 items, 2 worker(s)\n');
    expect(screen).toContain('throttled replica-lag=7.5  throttled');
    expect(screen).toContain('\r\u001b[2Kwarn: throttled: replica-lag = 7.5 over its limit 5; holding at zero items per second\n');
    expect(screen).toMatch(/\r\u001b\[2Kfull +\[█{24}\] +1,000\/1,000 +100% +100\/s +ETA 0s +errors 2 +completed\nfull: completed — report sha256:a{64}\n$/);
  });

  it('respects NO_COLOR but still redraws in place', () => {
    const { ev, stderr } = human(true, { NO_COLOR: '1' });
    ev.progress(snap(100));
    ev.close();
    expect(stderr.text).toContain('\r\u001b[2K');
    expect(stderr.text).not.toMatch(/\u001b\[[0-9;]*m/);
  });

  it('prints plain lines when stderr is not a terminal', () => {
    const { ev, stderr } = human(false);
    ev.progress(snap(100));
    ev.progress(snap(200));
    ev.event({ type: 'aborted', run: RUN, stage: 'full', reason: 'error-budget', detail: 'error-rate: 11 of the last 77 items failed' });
    expect(stderr.text).not.toContain('\u001b');
    const lines = stderr.text.trim().split('\n');
    expect(lines[0]).toMatch(/^full +\[.*\] +100\/1,000 +10\.0% .* running$/);
    expect(lines.at(-2)).toMatch(/^full +\[.*\] +200\/1,000 .* aborted$/);
    expect(lines.at(-1)).toBe('full: stopped (error-budget: error-rate: 11 of the last 77 items failed) — the state is consistent; run it again to resume');
  });
});

describe('reprise run --json', () => {
  it('prints only JSON events on stdout, completed with what the display knows', () => {
    const stdout = new Sink(false);
    const stderr = new Sink(false);
    let t = Date.parse('2026-11-13T09:00:00Z');
    const ev = cliRunEvents(createOutput(true, streams(stdout, stderr)), { stdout, stderr, now: () => t });
    ev.event({ type: 'start', run: RUN, stage: 'full', total: 1000, manifest: 'sha256:x', workers: 1 });
    ev.progress(snap(400));
    ev.event({ type: 'chunk', run: RUN, stage: 'full', seq: 5, items: 99, failed: 1 });
    t += 2000;
    ev.event({ type: 'paused', run: RUN, stage: 'full' });
    t += 1000;
    ev.event({ type: 'resumed', run: RUN, stage: 'full' });
    t += 5000;
    ev.log('info', 'cut 10 chunks');
    ev.log('warn', 'chunk 6 released (paused); it will be processed again');
    ev.progress(snap(1000, { failed: 3 }));
    ev.event({ type: 'finished', run: RUN, stage: 'full', outcome: 'completed', report: 'sha256:r', files: { json: 'r.json', md: 'r.md', html: 'r.html' } });
    ev.close();
    const lines = stdout.text.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.type)).toEqual(['start', 'chunk', 'paused', 'resumed', 'finished']);
    expect(lines[1]).toMatchObject({ seq: 5, items: 99, failed: 1, done: 500, total: 1000, ratePerSecond: 100, etaSeconds: 5 });
    expect(lines[3]).toMatchObject({ from: 'paused', afterMs: 1000 });
    expect(lines[4]).toMatchObject({ outcome: 'completed', done: 1000, failed: 3, total: 1000, durationMs: 8000, report: { hash: 'sha256:r', json: 'r.json', md: 'r.md', html: 'r.html' } });
    expect(lines[4].files).toBeUndefined();
    expect(stderr.text.trim().split('\n').map((l) => JSON.parse(l))).toEqual([{ level: 'warn', message: 'chunk 6 released (paused); it will be processed again' }]);
  });
});
