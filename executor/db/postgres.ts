/** PostgreSQL through a `pg` pool. */
import pg from 'pg';
import type { Database, OpenOptions, QueryResult, SqlRunner } from './database.js';
import { redact } from './database.js';

export function openPostgres(url: string, opts: OpenOptions): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 4,
    application_name: opts.applicationName ?? 'reprise',
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
  });
  // An idle client that loses its connection must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  const budget = opts.budget;
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
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        return await fn(client);
      } catch (e) {
        broken = e as Error;
        throw e;
      } finally {
        // A client whose connection failed is destroyed rather than returned to the pool.
        client.release(broken && isBroken(broken) ? broken : undefined);
      }
    });
  return {
    kind: 'postgres',
    label: redact(url),
    query: (text, params) => withBudget(() => wrap(pool).query(text, params)),
    exec: (script) => withBudget(() => wrap(pool).exec(script)),
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
    close: () => pool.end(),
  };
}

function isBroken(e: Error): boolean {
  const code = (e as { code?: string }).code;
  return !code || !/^[0-9A-Z]{5}$/.test(code) || code.startsWith('08') || code.startsWith('57');
}
