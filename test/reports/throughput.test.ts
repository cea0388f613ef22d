import { describe, expect, it } from 'vitest';
import { ThrottleRecorder, ThroughputRecorder } from '../../executor/reports/throughput.js';

describe('ThroughputRecorder', () => {
  it('buckets items per second from t = 0, filling gaps with zero', () => {
    const rec = new ThroughputRecorder({ startedAt: 10_000, now: () => 14_500 });
    rec.add(3, 10_100);
    rec.add(2, 10_900);
    rec.add(5, 13_000);
    expect(rec.toJSON()).toEqual([
      { t: 0, items: 5 },
      { t: 1, items: 0 },
      { t: 2, items: 0 },
      { t: 3, items: 5 },
      { t: 4, items: 0 },
    ]);
  });

  it('doubles the bucket width to stay within maxBuckets, keeping every item', () => {
    const rec = new ThroughputRecorder({ startedAt: 0, maxBuckets: 10, now: () => 0 });
    for (let ms = 0; ms < 100_000; ms += 100) rec.add(1, ms);
    const out = rec.toJSON(99_999);
    expect(out.length).toBeLessThanOrEqual(10);
    expect(out.reduce((n, b) => n + b.items, 0)).toBe(1000);
    expect(rec.widthSeconds).toBe(16);
    expect(out.map((b) => b.t)).toEqual(out.map((_, i) => i * 16));
  });
});

describe('ThrottleRecorder', () => {
  it('records episodes, their peak value and the total throttled time', () => {
    const rec = new ThrottleRecorder({ now: () => 0 });
    rec.throttled('replica-lag', 6, 5, 1_000);
    rec.throttled('replica-lag', 9, 5, 3_000);
    rec.clear(4_000);
    rec.throttled('queue-depth', 120, 100, 10_000);
    rec.throttled('replica-lag', 7, 5, 11_000); // another probe: closes one episode, opens the next
    const out = rec.toJSON(12_500);
    expect(out.throttledMs).toBe(3_000 + 1_000 + 1_500);
    expect(out.episodes).toEqual([
      { probe: 'replica-lag', value: 9, max: 5, from: new Date(1_000).toISOString(), to: new Date(4_000).toISOString() },
      { probe: 'queue-depth', value: 120, max: 100, from: new Date(10_000).toISOString(), to: new Date(11_000).toISOString() },
      { probe: 'replica-lag', value: 7, max: 5, from: new Date(11_000).toISOString(), to: null },
    ]);
    expect(rec.active).toBe(true);
  });

  it('keeps the most recent episodes but counts all of their time', () => {
    const rec = new ThrottleRecorder({ maxEpisodes: 2 });
    for (let i = 0; i < 5; i++) {
      rec.throttled('p', 1, 0, i * 10_000);
      rec.clear(i * 10_000 + 1_000);
    }
    const out = rec.toJSON(100_000);
    expect(out.episodes).toHaveLength(2);
    expect(out.throttledMs).toBe(5_000);
  });
});
