import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { sendAlert, stallAlertBody, type StallAlertBody } from '../../executor/monitor/alert.js';
import { RunMetrics } from '../../executor/monitor/metrics.js';
import { StallWatch, type StallInfo } from '../../executor/monitor/stall.js';

/** A real local webhook receiver; `answer` decides each response. */
async function webhook(answer: (n: number, req: IncomingMessage, res: ServerResponse) => void = (_n, _req, res) => res.writeHead(204).end()) {
  const received: Array<{ method: string; headers: IncomingMessage['headers']; body: unknown }> = [];
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', () => {
      received.push({ method: req.method ?? '', headers: req.headers, body: JSON.parse(raw) });
      answer(received.length, req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/reprise?token=s3cret`;
  return {
    url,
    received,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

describe('StallWatch', () => {
  it('fires once per stall episode and recovers on progress', () => {
    let t = 0;
    const stalls: StallInfo[] = [];
    const recoveries: StallInfo[] = [];
    const w = new StallWatch({ stallAfterMs: 1_000, now: () => t, onStall: (i) => void stalls.push(i), onRecover: (i) => void recoveries.push(i) });
    t = 999;
    expect(w.check()).toBe(false);
    t = 1_000;
    expect(w.check()).toBe(true);
    t = 5_000;
    expect(w.check()).toBe(true);
    expect(stalls).toEqual([{ lastProgressAt: 0, stalledForMs: 1_000 }]);
    w.progress();
    expect(w.stalled).toBe(false);
    expect(recoveries).toEqual([{ lastProgressAt: 0, stalledForMs: 5_000 }]);
    t = 5_500;
    w.progress(); // progress without a stall: no callback
    t = 7_000;
    expect(w.check()).toBe(true);
    expect(stalls).toHaveLength(2);
    expect(stalls[1]).toEqual({ lastProgressAt: 5_500, stalledForMs: 1_500 });
    expect(recoveries).toHaveLength(1);
  });

  it('does not judge a run paused on purpose, and restarts the clock on resume', () => {
    let t = 0;
    let stalls = 0;
    const w = new StallWatch({ stallAfterMs: 1_000, now: () => t, onStall: () => void stalls++ });
    w.suspend();
    t = 60_000;
    expect(w.check()).toBe(false);
    w.resume();
    t = 60_500;
    expect(w.check()).toBe(false);
    t = 61_000;
    expect(w.check()).toBe(true);
    expect(stalls).toBe(1);
  });

  it('closes an open episode on resume, so a run still stuck after a pause alerts again', () => {
    let t = 0;
    let stalls = 0;
    let recoveries = 0;
    const w = new StallWatch({ stallAfterMs: 1_000, now: () => t, onStall: () => void stalls++, onRecover: () => void recoveries++ });
    t = 1_000;
    expect(w.check()).toBe(true);
    w.suspend();
    t = 50_000;
    w.resume();
    expect(w.stalled).toBe(false);
    t = 51_000;
    expect(w.check()).toBe(true);
    expect(stalls).toBe(2);
    expect(recoveries).toBe(0);
  });

  it('never throws from a failing callback', async () => {
    const errors: unknown[] = [];
    let t = 0;
    const w = new StallWatch({ stallAfterMs: 10, now: () => t, onStall: () => Promise.reject(new Error('webhook down')), onError: (e) => errors.push(e) });
    t = 10;
    expect(() => w.check()).not.toThrow();
    await new Promise((r) => setTimeout(r, 0));
    expect(errors).toHaveLength(1);
  });

  it('checks by itself on a timer once started', async () => {
    let resolveStall: (i: StallInfo) => void = () => {};
    const stalled = new Promise<StallInfo>((r) => (resolveStall = r));
    const w = new StallWatch({ stallAfterMs: 150, onStall: (i) => resolveStall(i) }).start();
    closers.push(async () => w.stop());
    const info = await stalled;
    expect(info.stalledForMs).toBeGreaterThanOrEqual(150);
    expect(info.stalledForMs).toBeLessThan(1_000);
  });
});

describe('sendAlert', () => {
  it('POSTs the stall body as JSON to a real webhook', async () => {
    const hook = await webhook();
    closers.push(hook.close);
    const body = stallAlertBody({
      run: 'orders-tax-recompute.r1.0123abcd',
      stage: 'full',
      plan: 'orders-tax-recompute',
      revision: 1,
      lastProgressAt: Date.parse('2026-11-13T09:00:00Z'),
      stalledForSeconds: 300.4,
      onStall: 'pause',
      status: 'paused',
    });
    const result = await sendAlert(hook.url, body, { timeoutMs: 2_000 });
    expect(result).toEqual({ ok: true, status: 204, attempts: 1 });
    expect(hook.received).toHaveLength(1);
    expect(hook.received[0]?.method).toBe('POST');
    expect(hook.received[0]?.headers['content-type']).toBe('application/json');
    expect(hook.received[0]?.body).toEqual({
      type: 'reprise.stall',
      run: 'orders-tax-recompute.r1.0123abcd',
      stage: 'full',
      plan: 'orders-tax-recompute',
      revision: 1,
      lastProgressAt: '2026-11-13T09:00:00.000Z',
      stalledForSeconds: 300,
      onStall: 'pause',
      howToAbort: 'reprise abort orders-tax-recompute.r1.0123abcd',
      howToPause: 'reprise pause orders-tax-recompute.r1.0123abcd',
      status: 'paused',
      text: 'reprise: run orders-tax-recompute.r1.0123abcd (full) has made no progress for 300s (last at 2026-11-13T09:00:00.000Z); onStall=pause, paused. Abort: `reprise abort orders-tax-recompute.r1.0123abcd` · pause: `reprise pause orders-tax-recompute.r1.0123abcd`',
    } satisfies StallAlertBody);
  });

  it('retries 5xx with backoff, up to 3 attempts', async () => {
    const hook = await webhook((n, _req, res) => res.writeHead(n < 3 ? 503 : 200).end('ok'));
    closers.push(hook.close);
    const started = Date.now();
    expect(await sendAlert(hook.url, { type: 'reprise.stall' }, { backoffMs: 20 })).toEqual({ ok: true, status: 200, attempts: 3 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(60); // 20 + 40 ms of backoff
    expect(hook.received).toHaveLength(3);

    const down = await webhook((_n, _req, res) => res.writeHead(500).end());
    closers.push(down.close);
    expect(await sendAlert(down.url, {}, { backoffMs: 1 })).toEqual({ ok: false, error: 'webhook answered HTTP 500', status: 500, attempts: 3 });
    expect(down.received).toHaveLength(3);
  });

  it('does not retry a refusal (4xx)', async () => {
    const hook = await webhook((_n, _req, res) => res.writeHead(403).end());
    closers.push(hook.close);
    expect(await sendAlert(hook.url, {}, { backoffMs: 1 })).toEqual({ ok: false, error: 'webhook answered HTTP 403', status: 403, attempts: 1 });
    expect(hook.received).toHaveLength(1);
  });

  it('never throws: unreachable, timed out, or not a URL — and never repeats the URL', async () => {
    const gone = await webhook();
    const url = gone.url;
    await gone.close();
    const refused = await sendAlert(url, {}, { backoffMs: 1 });
    expect(refused).toMatchObject({ ok: false, status: null, attempts: 3 });
    expect(refused.ok === false && refused.error).toMatch(/unreachable \(ECONNREFUSED\)/);

    const silent = await webhook(() => {}); // never answers
    closers.push(silent.close);
    const timedOut = await sendAlert(silent.url, {}, { timeoutMs: 100, attempts: 2, backoffMs: 1 });
    expect(timedOut).toEqual({ ok: false, error: 'webhook did not answer within 100ms', status: null, attempts: 2 });

    const bad = await sendAlert('not a url s3cret', {}, { attempts: 1 });
    expect(bad.ok).toBe(false);
    for (const r of [refused, timedOut, bad]) expect(JSON.stringify(r)).not.toContain('s3cret');
  });
});

describe('a stalled run', () => {
  it('is detected, alerted on a real webhook, shown in the metrics, and its onStall action taken', async () => {
    const hook = await webhook();
    closers.push(hook.close);
    const metrics = new RunMetrics({ run: 'demo.r1.0123abcd', plan: 'demo', revision: 1, manifest: `sha256:${'0'.repeat(64)}`, stage: 'full' });
    const actions: string[] = [];
    let alerted: Promise<unknown> = Promise.resolve();
    let release: () => void = () => {};
    const handlerBlocked = new Promise<void>((r) => (release = r));

    const watch = new StallWatch({
      stallAfterMs: 200,
      checkEveryMs: 20,
      onStall: (info) => {
        metrics.stalled(true);
        actions.push('pause'); // the plan's onStall: pause
        alerted = sendAlert(
          hook.url,
          stallAlertBody({ run: 'demo.r1.0123abcd', stage: 'full', plan: 'demo', lastProgressAt: info.lastProgressAt, stalledForSeconds: info.stalledForMs / 1000, onStall: 'pause', status: 'paused' }),
        );
      },
      onRecover: () => {
        metrics.stalled(false);
        actions.push('recovered');
      },
    }).start();
    closers.push(async () => watch.stop());

    // A chunk commits, then the handler blocks on its next item.
    metrics.chunkCommitted(10);
    watch.progress();
    const stuck = handlerBlocked.then(() => {
      metrics.chunkCommitted(10);
      watch.progress();
    });
    while (!watch.stalled) await new Promise((r) => setTimeout(r, 10));
    expect(await alerted).toMatchObject({ ok: true });
    expect(hook.received).toHaveLength(1);
    expect(hook.received[0]?.body).toMatchObject({ type: 'reprise.stall', run: 'demo.r1.0123abcd', onStall: 'pause', howToAbort: 'reprise abort demo.r1.0123abcd' });
    expect(await metrics.metrics()).toMatch(/^reprise_stalled\{run="demo\.r1\.0123abcd",stage="full"\} 1$/m);
    expect(actions).toEqual(['pause']);

    release();
    await stuck;
    expect(actions).toEqual(['pause', 'recovered']);
    expect(await metrics.metrics()).toMatch(/^reprise_stalled\{run="demo\.r1\.0123abcd",stage="full"\} 0$/m);
    expect(hook.received).toHaveLength(1); // one alert per episode
  });
});
