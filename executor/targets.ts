/**
 * The plan's connections at run time: URLs come from the environment variables the plan names;
 * PostgreSQL pools are opened lazily and share one budget of `rate.maxConnections` connections
 * (the executor's own pools, never the live path's); Redis clients fail fast while disconnected,
 * so anything guarded by Redis fails closed instead of queueing.
 */
import { Redis } from 'ioredis';
import type { Plan } from '../schema/manifest.types.js';
import { ExitCode, RepriseError } from '../compiler/errors.js';
import { openDatabase, parseDbUrl, redact, Semaphore, type Database, type SqlRunner } from './db/database.js';

export type Fingerprint =
  | { kind: 'postgres'; systemIdentifier: string | null; database: string }
  | { kind: 'redis'; runId: string };

/** The identity of a PostgreSQL database: its cluster's `system_identifier` (when readable) and its name. */
export async function postgresFingerprint(db: SqlRunner): Promise<Fingerprint> {
  const { rows } = await db.query<{ db: string }>('select current_database() as db');
  let systemIdentifier: string | null = null;
  try {
    const r = await db.query<{ id: string }>('select system_identifier::text as id from pg_control_system()');
    systemIdentifier = r.rows[0]?.id ?? null;
  } catch {
    systemIdentifier = null; // not allowed to read it; the database name still binds the report
  }
  return { kind: 'postgres', systemIdentifier, database: rows[0]?.db ?? '' };
}

export class Targets {
  private readonly dbs = new Map<string, Promise<Database>>();
  private readonly redises = new Map<string, Redis>();
  readonly budget: Semaphore;

  constructor(readonly plan: Plan, private readonly env: NodeJS.ProcessEnv = process.env) {
    this.budget = new Semaphore(plan.rate.maxConnections);
  }

  /** Connection names the plan uses, by kind. */
  names(kind: 'postgres' | 'redis'): string[] {
    return Object.entries(this.plan.connections).filter(([, c]) => c?.kind === kind).map(([n]) => n);
  }

  url(name: string): string {
    const conn = this.plan.connections[name];
    if (!conn) throw new RepriseError('UNDECLARED_CONNECTION', `connection ${name} is not declared by the plan`, { exit: ExitCode.invalidInput });
    const url = this.env[conn.env];
    if (!url) {
      throw new RepriseError('CONNECTION_ENV_MISSING', `connection \`${name}\` needs environment variable ${conn.env}, which is not set`, {
        exit: ExitCode.invalidInput,
        hint: `export ${conn.env}=<url> before running (plans never contain URLs or secrets)`,
      });
    }
    return url;
  }

  /** A PostgreSQL (or embedded) database of the plan, opened once. */
  sql(name: string): Promise<Database> {
    let db = this.dbs.get(name);
    if (!db) {
      const url = this.url(name);
      db = openDatabase(url, { max: this.plan.rate.maxConnections, applicationName: `reprise:${this.plan.name}`, budget: parseDbUrl(url).kind === 'postgres' ? this.budget : undefined });
      this.dbs.set(name, db);
      db.catch(() => this.dbs.delete(name));
    }
    return db;
  }

  /** A Redis client of the plan (commands fail immediately while disconnected). */
  async redis(name: string): Promise<Redis> {
    let r = this.redises.get(name);
    if (!r) {
      r = new Redis(this.url(name), {
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        connectTimeout: 3_000,
        commandTimeout: 5_000,
        retryStrategy: (times) => Math.min(100 * times, 1_000),
      });
      r.on('error', () => undefined);
      this.redises.set(name, r);
      try {
        await r.connect();
      } catch {
        // Stays disconnected; commands fail (closed) until it reconnects.
      }
    }
    return r;
  }

  async fingerprint(name: string): Promise<Fingerprint> {
    const conn = this.plan.connections[name];
    if (conn?.kind === 'redis') {
      const info = await (await this.redis(name)).info('server');
      const runId = /run_id:([0-9a-f]+)/.exec(info)?.[1];
      return { kind: 'redis', runId: runId ?? 'unknown' };
    }
    return postgresFingerprint(await this.sql(name));
  }

  /** Fingerprints of every connection the plan uses. */
  async fingerprints(): Promise<Record<string, Fingerprint>> {
    const out: Record<string, Fingerprint> = {};
    for (const [name, c] of Object.entries(this.plan.connections).sort()) {
      if (!c || c.kind === 'unused') continue;
      out[name] = await this.fingerprint(name);
    }
    return out;
  }

  describe(name: string): string {
    return `${name} (${redact(this.url(name))})`;
  }

  async close(): Promise<void> {
    for (const db of this.dbs.values()) await (await db.catch(() => undefined))?.close().catch(() => undefined);
    for (const r of this.redises.values()) r.disconnect();
    this.dbs.clear();
    this.redises.clear();
  }
}
