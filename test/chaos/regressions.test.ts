/**
 * Minimal reproductions of bugs the chaos harness found, kept as regression tests.
 *
 * 1. A PostgreSQL restart crashed `reprise run` (exit 1, "Unhandled 'error' event ... Connection
 *    terminated unexpectedly"): a client checked out of the pool (every query of a pool under
 *    the plan's connection budget, every transaction and session) had no 'error' listener, so a
 *    connection dropped between two queries was an uncaught exception instead of a connection
 *    error the worker retries.
 * 2. A worker frozen past its lease (SIGSTOP) in the middle of a dedupe effect — its claim sent,
 *    the apply not yet — woke up and applied the effect after the worker that took its chunk
 *    over had committed it (an at-least-once effect applied twice, an at-most-once one applied
 *    after its chunk's commit recorded it `claimed`). Fencing stops the stale commit only; the
 *    gate now asks the worker's lease before a claim and before an apply.
 * 3. `reprise run` started while the plan's checkpoint database was down (PostgreSQL restarting)
 *    exited 1 with "this is a bug in reprise" (ECONNREFUSED from the state store's migration)
 *    instead of refusing the stage, exit 3, as a --state store that is down does.
 */
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { compileSource } from '../../compiler/compile.js';
import { fsPlanSource } from '../../compiler/source.js';
import { isConnectionError, openDatabase, Semaphore } from '../../executor/db/database.js';
import type { Applier } from '../../executor/effects/appliers.js';
import type { ClaimOutcome, DedupeStore } from '../../executor/effects/dedupe.js';
import { EffectsGate, LeaseExpiredError } from '../../executor/effects/gate.js';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { StateStore } from '../../executor/store/store.js';
import { crashPlan } from '../support/crash.js';
import { freePort } from '../support/servers.js';
import { createTestDatabase } from '../support/db.js';

async function terminate(url: string, pid: number): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('select pg_terminate_backend($1)', [pid]);
  } finally {
    await c.end();
  }
}

describe('a connection dropped while checked out of the pool', () => {
  for (const budgeted of [false, true]) {
    it(`fails the transaction with a connection error, never crashes the process${budgeted ? ' (pool under a connection budget)' : ''}`, async () => {
      const tdb = await createTestDatabase('regress_conn', inject('pgUrl'));
      const db = await openDatabase(tdb.url, { max: 2, applicationName: 'reprise-regress', ...(budgeted ? { budget: new Semaphore(2) } : {}) });
      try {
        const failure = await db
          .transaction(async (tx) => {
            const pid = Number((await tx.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
            await terminate(tdb.url, pid);
            // The termination arrives while no query is active on the client.
            await new Promise((r) => setTimeout(r, 300));
            await tx.query('select 1');
          })
          .then(() => undefined, (e: unknown) => e);
        expect(failure).toBeInstanceOf(Error);
        expect(isConnectionError(failure)).toBe(true);
        // The pool recovers: the broken client was destroyed, a new one is opened.
        expect((await db.query<{ one: number }>('select 1 as one')).rows[0]!.one).toBe(1);
      } finally {
        await db.close();
        await tdb.drop();
      }
    });
  }
});

describe('a worker frozen past its lease in the middle of a dedupe effect', () => {
  it('does not apply it when it wakes up (the lease is asked before the claim and before the apply)', async () => {
    const { plan } = await compileSource(fsPlanSource(crashPlan({ n: 100, namespace: 'regress', dedupeStore: 'postgres' }).path));
    const applied: string[] = [];
    let frozenPastLease = false;
    const fences: unknown[] = [];
    const applier = (name: string): Applier => ({ effect: plan.sideEffects.find((e) => e.name === name)!, needsBefore: false, apply: async (args, ctx) => { applied.push(`${name}:${String(args.id)}`); fences.push(ctx.fence); } });
    const claims: string[] = [];
    const store = {
      kind: 'postgres', namespace: 'regress', database: undefined,
      // The process is frozen while its claim is on the wire; it wakes up after the lease TTL.
      claim: async (key: string): Promise<ClaimOutcome> => { claims.push(key); frozenPastLease = true; return { outcome: 'claimed' }; },
      confirm: async () => undefined, release: async () => undefined, claimMany: async () => [], confirmMany: async () => undefined, peek: async () => undefined, ping: async () => undefined,
    } as unknown as DedupeStore;
    const gate = new EffectsGate({ plan, runId: 'regress.r1.00000000', stage: 'full', appliers: new Map([['publish_alo', applier('publish_alo')], ['publish_amo', applier('publish_amo')]]), dedupe: store, transactionalConnection: null });
    const item = { key: '7', row: { id: '7' } };
    const { effects } = gate.forItem(item, 1, new AbortController().signal, { held: () => !frozenPastLease, fence: { chunk: 3, generation: 1 } });
    await expect(effects.publish_alo!({ id: '7' })).rejects.toBeInstanceOf(LeaseExpiredError);
    await expect(effects.publish_amo!({ id: '7' })).rejects.toBeInstanceOf(LeaseExpiredError);
    expect(claims).toEqual(['alo:7']); // the second call was refused before claiming
    expect(applied).toEqual([]);
    // Holding the lease, the same calls apply.
    frozenPastLease = false;
    const held = gate.forItem(item, 2, new AbortController().signal, { held: () => true, fence: { chunk: 3, generation: 2 } });
    await held.effects.publish_amo!({ id: '7' });
    expect(applied).toEqual(['publish_amo:7']);
    // The effect is handed the lease as a fencing token.
    expect(fences).toEqual([{ chunk: 3, generation: 2 }]);
  });
});

describe('the checkpoint database down when a stage starts', () => {
  it('refuses with STATE_UNAVAILABLE, exit 3 (not an internal error)', async () => {
    const db = await openDatabase(`postgres://postgres@127.0.0.1:${await freePort()}/nowhere`, { max: 1 });
    try {
      const failure = await StateStore.on(db).then(() => undefined, (e: unknown) => e);
      expect(failure).toBeInstanceOf(RepriseError);
      expect((failure as RepriseError).code).toBe('STATE_UNAVAILABLE');
      expect((failure as RepriseError).exit).toBe(ExitCode.refused);
    } finally {
      await db.close();
    }
  });
});
