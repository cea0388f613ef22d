/**
 * Minimal reproductions of bugs the chaos harness found, kept as regression tests.
 *
 * 1. A PostgreSQL restart crashed `reprise run` (exit 1, "Unhandled 'error' event ... Connection
 *    terminated unexpectedly"): a client checked out of the pool (every query of a pool under
 *    the plan's connection budget, every transaction and session) had no 'error' listener, so a
 *    connection dropped between two queries was an uncaught exception instead of a connection
 *    error the worker retries.
 */
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { isConnectionError, openDatabase, Semaphore } from '../../executor/db/database.js';
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
