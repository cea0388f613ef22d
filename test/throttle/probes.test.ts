/**
 * Protect probes against a real HTTP server and a real PostgreSQL: what counts as healthy, that
 * every way of failing counts as unhealthy (fail closed) with a reason that says which, and the
 * guard's state machine (throttle at once, resume only after a healthy streak).
 */
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Plan, Probe } from '../../schema/manifest.types.js';
import { checkProbesOnce, protectProbesCheck } from '../../executor/throttle/index.js';
import { openProbes, ProbeGuard, type ProbeReading, type ProbeRunner } from '../../executor/throttle/probes.js';
import type { ThrottleState } from '../../executor/throttle/limiter.js';
import { createTestDatabase, withClient, type TestDatabase } from '../support/db.js';
import { startHttpServer, type TestHttpServer } from '../support/http.js';

let http: TestHttpServer;
let db: TestDatabase;
/** What the HTTP server answers, by path. */
const answers = new Map<string, (res: ServerResponse) => void>();

beforeAll(async () => {
  http = await startHttpServer();
  http.respond = (req, res) => {
    const a = answers.get(req.url.split('?')[0]!);
    if (a) a(res);
    else { res.writeHead(404); res.end('no such probe'); }
  };
  db = await createTestDatabase('probes');
  await withClient(db.url, (c) => c.query('create table live_stats (p99_ms numeric not null)'));
});

afterAll(async () => {
  await http?.close();
  await db?.drop();
});

function probe(p: Partial<Probe> & { name: string }): Probe {
  return { connection: null, query: null, http: null, max: 10, timeoutMs: 1000, ...p };
}

function planWith(probes: Probe[]): Plan {
  return { name: 'probe-test', rate: { protect: probes, checkEvery: 100 } } as unknown as Plan;
}

const targets = { url: (name: string) => (name === 'live' ? db.url : 'postgres://nobody@127.0.0.1:1/none') };

async function readOne(p: Probe): Promise<ProbeReading> {
  const [r] = await checkProbesOnce({ plan: planWith([p]), targets: targets as never });
  return r!;
}

const text = (body: string, status = 200) => (res: ServerResponse) => { res.writeHead(status, { 'content-type': 'text/plain' }); res.end(body); };
const json = (doc: unknown) => (res: ServerResponse) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(doc)); };

describe('HTTP probes', () => {
  it('read a number body, or a dotted field of a JSON body; over max is unhealthy, at max is not', async () => {
    answers.set('/n', text(' 7.5\n'));
    answers.set('/j', json({ latency: { p99: 12 } }));
    answers.set('/edge', json({ v: 10 }));
    expect(await readOne(probe({ name: 'n', http: { url: `${http.url}/n`, field: null } }))).toMatchObject({ ok: true, value: 7.5, reason: null });
    expect(await readOne(probe({ name: 'j', http: { url: `${http.url}/j`, field: 'latency.p99' } }))).toMatchObject({ ok: false, value: 12, reason: 'value 12 over max 10' });
    expect(await readOne(probe({ name: 'edge', http: { url: `${http.url}/edge`, field: 'v' } }))).toMatchObject({ ok: true, value: 10 });
  });

  it('fail closed: an error status, a body without the number, a missing field, a refused connection, a timeout', async () => {
    answers.set('/500', text('boom', 500));
    answers.set('/words', text('healthy'));
    answers.set('/nofield', json({ other: 1 }));
    answers.set('/slow', (res) => { setTimeout(() => text('1')(res), 3000).unref(); });
    const cases: Array<[Probe, RegExp]> = [
      [probe({ name: 'a', http: { url: `${http.url}/500`, field: null } }), /^error: HTTP 500$/],
      [probe({ name: 'b', http: { url: `${http.url}/words`, field: null } }), /^error: the body is not a number/],
      [probe({ name: 'c', http: { url: `${http.url}/nofield`, field: 'p99' } }), /^error: the body has no `p99`/],
      [probe({ name: 'd', http: { url: 'http://127.0.0.1:1/x', field: null } }), /^error: /],
      [probe({ name: 'e', http: { url: `${http.url}/slow`, field: null }, timeoutMs: 100 }), /^timed out after 100 ms$/],
      [probe({ name: 'f', http: { url: { env: 'REPRISE_TEST_UNSET_PROBE_URL' }, field: null } }), /REPRISE_TEST_UNSET_PROBE_URL/],
    ];
    for (const [p, reason] of cases) {
      const r = await readOne(p);
      expect(r.ok, p.name).toBe(false);
      expect(r.value, p.name).toBeNull();
      expect(r.reason, p.name).toMatch(reason);
    }
  });
});

describe('SQL probes', () => {
  it('read `value` of the first row (numeric as text too)', async () => {
    await withClient(db.url, (c) => c.query('insert into live_stats values (3.25)'));
    const r = await readOne(probe({ name: 's', connection: 'live', query: 'select max(p99_ms) as value from live_stats' }));
    expect(r).toMatchObject({ ok: true, value: 3.25 });
  });

  it('fail closed: no row, no value column, a null or non-number, a query error, a timeout, an unreachable server', async () => {
    const cases: Array<[string, RegExp, Partial<Probe>?]> = [
      ['select 1 as value where false', /no row/],
      ['select 1 as v', /no `value` column \(columns: v\)/],
      ['select null as value', /not a number: null/],
      ["select 'x' as value", /not a number: "x"/],
      ['select * from no_such_table', /^error: relation "no_such_table" does not exist/],
      ['select pg_sleep(2) is null as x, 1 as value', /^timed out after 150 ms$|canceling statement due to statement timeout/, { timeoutMs: 150 }],
      ['select 1 as value', /^error: /, { connection: 'elsewhere' }],
    ];
    for (const [query, reason, extra] of cases) {
      const r = await readOne(probe({ name: 'q', connection: 'live', query, ...extra }));
      expect(r.ok, query).toBe(false);
      expect(r.reason, query).toMatch(reason);
    }
  });

  it('run read-only: a probe cannot write', async () => {
    const r = await readOne(probe({ name: 'w', connection: 'live', query: 'insert into live_stats values (1) returning 1 as value' }));
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/read-only transaction/);
  });
});

describe('the live guard', () => {
  const reading = (ok: boolean, value: number | null = ok ? 1 : 99, reason: string | null = ok ? null : 'value 99 over max 10'): ProbeReading => ({ probe: 'lag', ok, value, max: 10, reason, ms: 1, at: 0 });

  it('throttles at the first unhealthy check and resumes only after two healthy checks in a row', async () => {
    const guard = new ProbeGuard([], { checkEveryMs: 1000 });
    const seen: ThrottleState[] = [];
    guard.subscribe((s) => seen.push(s));
    const h = (ok: boolean) => guard.apply([reading(true), { ...reading(ok), probe: 'latency' }]);
    h(true);
    expect(guard.state().throttled).toBe(false);
    h(false);
    expect(guard.state()).toMatchObject({ throttled: true, probe: 'latency', value: 99, reason: 'value 99 over max 10' });
    let released = false;
    const waiting = guard.waitUntilHealthy().then(() => { released = true; });
    h(true); // one healthy check: still held
    await Promise.resolve();
    expect(guard.state().throttled).toBe(true);
    expect(released).toBe(false);
    h(false); // unhealthy again: the streak starts over
    h(true);
    await Promise.resolve();
    expect(guard.state().throttled).toBe(true);
    h(true); // the second healthy check in a row
    await waiting;
    expect(released).toBe(true);
    expect(guard.state().throttled).toBe(false);
    expect(seen.map((s) => s.throttled)).toEqual([true, false]);
  });

  it('backs off on flapping: a trip soon after a resume doubles the streak the next resume needs; a calm spell resets it', () => {
    const guard = new ProbeGuard([], { checkEveryMs: 1000, healthyStreak: 2, maxHealthyStreak: 8, flapWindow: 3 });
    const bad = () => guard.apply([reading(false)]);
    const good = () => guard.apply([reading(true)]);
    const healthyChecksToResume = (): number => {
      let n = 0;
      while (guard.state().throttled) { good(); n++; }
      return n;
    };
    bad();
    expect(healthyChecksToResume()).toBe(2);
    bad(); // at once: a quick re-trip
    expect(guard.requiredStreak).toBe(4);
    expect(healthyChecksToResume()).toBe(4);
    good(); bad(); // within 3 checks again
    expect(healthyChecksToResume()).toBe(8);
    bad();
    expect(healthyChecksToResume()).toBe(8); // capped
    for (let i = 0; i < 3; i++) good(); // a resume that held for the flap window
    bad();
    expect(healthyChecksToResume()).toBe(2);
  });

  it('paces the run back up after a resume (and at the start): 1/8 of the rate, doubling at each healthy check', () => {
    const guard = new ProbeGuard([], { checkEveryMs: 1000 });
    const paces: number[] = [];
    const check = (ok: boolean) => { guard.apply([reading(ok)]); paces.push(guard.pace()); };
    for (const ok of [true, true, true, true, true, false, true, true, true, true, true]) check(ok);
    expect(paces).toEqual([1 / 8, 1 / 4, 1 / 2, 1, 1, 0, 0, 1 / 8, 1 / 4, 1 / 2, 1]);
  });

  it('a failing probe throttles with its reason and no value; a change of value while throttled is announced', () => {
    const guard = new ProbeGuard([], { checkEveryMs: 1000 });
    const seen: ThrottleState[] = [];
    guard.subscribe((s) => seen.push(s));
    guard.apply([reading(false, null, 'timed out after 2000 ms')]);
    guard.apply([reading(false, 42, 'value 42 over max 10')]);
    expect(seen).toEqual([
      { throttled: true, probe: 'lag', value: null, reason: 'timed out after 2000 ms' },
      { throttled: true, probe: 'lag', value: 42, reason: 'value 42 over max 10' },
    ]);
  });

  it('reads the probes before start() returns, then every checkEvery until closed; an abort releases a waiter', async () => {
    let value = 50;
    answers.set('/flip', (res) => text(String(value))(res));
    const runners: ProbeRunner[] = openProbes(planWith([probe({ name: 'flip', http: { url: `${http.url}/flip`, field: null } })]), targets as never);
    const guard = new ProbeGuard(runners, { checkEveryMs: 50 });
    await guard.start();
    expect(guard.checks).toBe(1);
    expect(guard.state()).toMatchObject({ throttled: true, probe: 'flip', value: 50 });
    const ac = new AbortController();
    const aborted = guard.waitUntilHealthy(ac.signal);
    ac.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    value = 1;
    await guard.waitUntilHealthy();
    expect(guard.checks).toBeGreaterThanOrEqual(3);
    await guard.close();
    const after = guard.checks;
    await new Promise((r) => setTimeout(r, 150));
    expect(guard.checks).toBe(after);
  });
});

describe('the go/no-go row', () => {
  it('is go when every probe is healthy, no-go naming the probe when one is over or unreadable, n/a without probes', async () => {
    answers.set('/good', text('1'));
    answers.set('/bad', text('99'));
    const good = probe({ name: 'good', http: { url: `${http.url}/good`, field: null } });
    const bad = probe({ name: 'bad', http: { url: `${http.url}/bad`, field: null } });
    const broken = probe({ name: 'broken', connection: 'live', query: 'select nonsense' });
    const check = (ps: Probe[]) => protectProbesCheck({ plan: planWith(ps), targets: targets as never });
    expect(await check([])).toMatchObject({ ok: true, status: 'n/a' });
    expect(await check([good])).toMatchObject({ ok: true, status: 'go', detail: 'good 1 (max 10)' });
    expect(await check([good, bad])).toMatchObject({ ok: false, status: 'no-go', code: 'PROBE_UNHEALTHY', detail: 'bad 99 (max 10)' });
    const failed = await check([bad, broken]);
    expect(failed).toMatchObject({ ok: false, status: 'no-go', code: 'PROBE_FAILED' });
    expect(failed.detail).toMatch(/^broken \? \(max 10\): error: column "nonsense" does not exist/);
  });
});
