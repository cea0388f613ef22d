/** PostgreSQL through a `pg` pool. */
import pg from 'pg';
import type { Database, OpenOptions, QueryResult, Semaphore, SqlRunner } from './database.js';
import { redact } from './database.js';

/**
 * Pools sharing a budget (a plan's `rate.maxConnections`, see Targets). The budget's permits
 * bound the connections in use; to bound the connections *open* as well, a pool about to open
 * one more connection first closes idle ones of the other pools until the total fits.
 */
const poolsOfBudget = new WeakMap<Semaphore, Set<pg.Pool>>();

function openCount(pools: Set<pg.Pool>): number {
  let n = 0;
  for (const p of pools) n += p.totalCount;
  return n;
}

/**
 * Checks a client out of `pool` without the budget's pools holding more than `budget.size`
 * connections: the last check and the pool's connect() happen in one synchronous step (a pool
 * that must open a connection counts it at once).
 */
async function checkoutWithin(pool: pg.Pool, max: number, budget: Semaphore): Promise<pg.PoolClient> {
  const pools = poolsOfBudget.get(budget)!;
  for (;;) {
    // An idle client not already promised to a waiter is handed over (connect() claims it on the next tick, in order).
    if (pool.idleCount > pool.waitingCount || pool.totalCount >= max || openCount(pools) < budget.size) return pool.connect();
    const victim = [...pools].find((p) => p !== pool && p.idleCount > p.waitingCount);
    if (!victim) {
      // Every other connection is in use or closing; the permit we hold means one is closing.
      await new Promise((r) => setTimeout(r, 2));
      continue;
    }
    // With more idle clients than waiters, connect() hands over an idle one (no new connection).
    const idle = await victim.connect();
    const ended = new Promise<void>((r) => { idle.once('end', () => r()); });
    idle.release(true);
    await ended;
  }
}

export function openPostgres(url: string, opts: OpenOptions): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 4,
    application_name: opts.applicationName ?? 'reprise',
    connectionTimeoutMillis: 10_000,
    // Within a budget, idle connections are closed when another pool needs room (a timeout
    // would close them behind the budget's back); otherwise after 30 s.
    idleTimeoutMillis: opts.budget ? 0 : 30_000,
    keepAlive: true,
  });
  // An idle client that loses its connection must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  const budget = opts.budget;
  const max = opts.max ?? 4;
  if (budget) {
    let pools = poolsOfBudget.get(budget);
    if (!pools) poolsOfBudget.set(budget, (pools = new Set()));
    pools.add(pool);
  }
  const withBudget = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (!budget) return fn();
    const release = await budget.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  };
  const wrap = (c: pg.PoolClient | pg.Pool): SqlRunner => ({
    async query<T>(text: string, params?: unknown[]): Promise<QueryResult<T>> {
      const r = await c.query(text, params as unknown[]);
      return { rows: r.rows as T[], rowCount: r.rowCount ?? 0, fields: r.fields?.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })) ?? [] };
    },
    async exec(script: string): Promise<void> {
      await c.query(script);
    },
  });
  const withClient = async <T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> =>
    withBudget(async () => {
      const client = budget ? await checkoutWithin(pool, max, budget) : await pool.connect();
      let broken: Error | undefined;
      // The pool listens for errors of idle clients only: a checked-out client whose connection
      // drops (a server restart, pg_terminate_backend) emits 'error', which would crash the
      // process without a listener. The error reaches `fn` through its next query instead.
      const onError = (e: Error): void => { broken ??= e; };
      client.on('error', onError);
      try {
        return await fn(client);
      } catch (e) {
        broken = e as Error;
        throw e;
      } finally {
        client.removeListener('error', onError);
        // A client whose connection failed is destroyed rather than returned to the pool.
        client.release(broken && isBroken(broken) ? broken : undefined);
      }
    });
  return {
    kind: 'postgres',
    label: redact(url),
    query: (text, params) => (budget ? withClient((c) => wrap(c).query(text, params)) : wrap(pool).query(text, params)),
    exec: (script) => (budget ? withClient((c) => wrap(c).exec(script)) : wrap(pool).exec(script)),
    transaction: (fn, topts) =>
      withClient(async (client) => {
        await client.query(topts?.readOnly ? 'begin transaction read only' : 'begin');
        try {
          const out = await fn(wrap(client));
          await client.query('commit');
          return out;
        } catch (e) {
          await client.query('rollback').catch(() => undefined);
          throw e;
        }
      }),
    session: (fn) => withClient((client) => fn(wrap(client))),
    async listen(channel, onMessage) {
      const client = new pg.Client({ connectionString: url, application_name: `${opts.applicationName ?? 'reprise'}-listen` });
      client.on('error', () => undefined);
      await client.connect();
      client.on('notification', (n) => { if (n.channel === channel) onMessage(n.payload ?? ''); });
      await client.query(`listen ${pg.escapeIdentifier(channel)}`);
      return async () => { await client.end().catch(() => undefined); };
    },
    close: async () => {
      if (budget) poolsOfBudget.get(budget)?.delete(pool);
      await pool.end();
    },
  };
}

function isBroken(e: Error): boolean {
  const code = (e as { code?: string }).code;
  return !code || !/^[0-9A-Z]{5}$/.test(code) || code.startsWith('08') || code.startsWith('57');
}
