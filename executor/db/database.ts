/**
 * One SQL interface over PostgreSQL (`pg`) and embedded PGlite, so the state store and the
 * executor's queries have a single code path. Values are always bound as `$n` parameters.
 *
 * URLs: `postgres://…` / `postgresql://…` (a server), `pglite:PATH` or a bare path (embedded,
 * on disk), `memory:` / `memory:NAME` (embedded, in memory). Within one process the same
 * embedded URL always yields the same database instance, so a plan whose target and state store
 * are the same embedded database shares one instance (and one transaction).
 */
import { resolve } from 'node:path';
import { ExitCode, RepriseError } from '../../compiler/errors.js';

export interface QueryResult<T = Record<string, unknown>> {
  rows: T[];
  rowCount: number;
  fields: Array<{ name: string; dataTypeID: number }>;
}

/** Something that runs SQL: a database, or a transaction in progress. */
export interface SqlRunner {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<QueryResult<T>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

export interface TransactionOptions {
  readOnly?: boolean;
}

export interface Database extends SqlRunner {
  readonly kind: 'postgres' | 'pglite';
  /** The URL it was opened with, password removed. */
  readonly label: string;
  /** Runs `fn` in one transaction (BEGIN … COMMIT, ROLLBACK on throw). */
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  /** A dedicated session (one connection) for work that must stay on it, such as LISTEN. */
  session<T>(fn: (s: SqlRunner) => Promise<T>): Promise<T>;
  /** Subscribe to NOTIFY on a channel (server only; embedded stores return undefined). */
  listen?(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export type DbUrlKind = { kind: 'postgres'; url: string } | { kind: 'pglite'; dataDir: string | undefined; key: string };

/** Classifies a state or connection URL. */
export function parseDbUrl(url: string): DbUrlKind {
  if (/^postgres(ql)?:\/\//.test(url)) return { kind: 'postgres', url };
  if (url === 'memory:' || url.startsWith('memory:')) return { kind: 'pglite', dataDir: undefined, key: url };
  if (url.startsWith('pglite:')) {
    const dir = resolve(url.slice('pglite:'.length));
    return { kind: 'pglite', dataDir: dir, key: `pglite:${dir}` };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new RepriseError('DB_URL_UNSUPPORTED', `unsupported database URL scheme in ${redact(url)}`, {
      exit: ExitCode.invalidInput,
      hint: 'use postgres://…, pglite:PATH, a directory path, or memory:',
    });
  }
  const dir = resolve(url);
  return { kind: 'pglite', dataDir: dir, key: `pglite:${dir}` };
}

/** A URL with its password replaced, for messages and logs. */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@/]*@/, '$1***@');
}

export interface OpenOptions {
  /** Most connections in the pool (servers only). @defaultValue 4 */
  max?: number;
  /** `application_name` reported to the server. @defaultValue 'reprise' */
  applicationName?: string;
  /** A shared budget of connections across several databases (rate.maxConnections). */
  budget?: Semaphore;
}

export async function openDatabase(url: string, opts: OpenOptions = {}): Promise<Database> {
  const parsed = parseDbUrl(url);
  if (parsed.kind === 'postgres') {
    const { openPostgres } = await import('./postgres.js');
    return openPostgres(parsed.url, opts);
  }
  const { openPglite } = await import('./pglite.js');
  return openPglite(parsed.key, parsed.dataDir);
}

/** Counting semaphore (FIFO). */
export class Semaphore {
  private waiters: Array<() => void> = [];
  private used = 0;
  constructor(readonly size: number) {}
  get inUse(): number {
    return this.used;
  }
  async acquire(): Promise<() => void> {
    if (this.used < this.size) {
      this.used++;
      return this.releaser();
    }
    await new Promise<void>((r) => this.waiters.push(r));
    this.used++;
    return this.releaser();
  }
  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.used--;
      const next = this.waiters.shift();
      if (next) next();
    };
  }
}

/** SQLSTATE codes reprise branches on. */
export const SqlState = {
  uniqueViolation: '23505',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  cannotConnectNow: '57P03',
  tooManyConnections: '53300',
  readOnlyTransaction: '25006',
  undefinedTable: '42P01',
} as const;

/** Whether an error means the database could not be reached or dropped the connection. */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (e.code && ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', SqlState.adminShutdown, SqlState.crashShutdown, SqlState.cannotConnectNow, SqlState.tooManyConnections, '08000', '08003', '08006', '08001', '08004'].includes(e.code)) return true;
  return /Connection terminated|connection.*(closed|ended|lost)|Client has encountered a connection error|timeout exceeded when trying to connect|terminating connection/i.test(e.message ?? '');
}
