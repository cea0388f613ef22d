/**
 * Embedded PostgreSQL (PGlite). One instance per data directory (or memory: name) per process;
 * PGlite serializes queries itself, and `transaction` holds it exclusively. An on-disk store is
 * guarded by a lock file so a second process cannot open it at the same time (PGlite has no
 * multi-process access); control commands reach a running process through a flag file instead.
 */
import { PGlite, types } from '@electric-sql/pglite';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import type { Database, QueryResult, SqlRunner } from './database.js';

interface Shared {
  db: PGlite;
  refs: number;
  lockFile: string | undefined;
  database: Database;
}

const instances = new Map<string, Promise<Shared>>();

// pg returns int8 and numeric as strings; so does reprise's embedded store, so items look the same on both.
const parsers = { [types.INT8]: (v: string) => v };

export async function openPglite(key: string, dataDir: string | undefined): Promise<Database> {
  let shared = instances.get(key);
  if (!shared) {
    shared = create(key, dataDir);
    instances.set(key, shared);
    shared.catch(() => instances.delete(key));
  }
  const s = await shared;
  s.refs++;
  let closed = false;
  return {
    ...s.database,
    async close() {
      if (closed) return;
      closed = true;
      s.refs--;
      if (s.refs === 0) {
        instances.delete(key);
        await s.db.close();
        if (s.lockFile) rmSync(s.lockFile, { force: true });
      }
    },
  };
}

/** Path of the lock file guarding an embedded store's data directory. */
export function lockFileOf(dataDir: string): string {
  return `${dataDir}.lock`;
}

async function create(key: string, dataDir: string | undefined): Promise<Shared> {
  let lockFile: string | undefined;
  if (dataDir) {
    mkdirSync(dirname(dataDir), { recursive: true });
    lockFile = lockFileOf(dataDir);
    takeLock(lockFile, dataDir);
  }
  let db: PGlite;
  try {
    db = await PGlite.create(dataDir ? { dataDir, parsers } : { parsers });
  } catch (e) {
    if (lockFile) rmSync(lockFile, { force: true });
    throw new RepriseError('STATE_UNAVAILABLE', `cannot open the embedded store at ${dataDir ?? key}: ${(e as Error).message}`, {
      exit: ExitCode.internal,
      hint: 'the directory may be damaged or written by a newer PGlite',
      cause: e,
    });
  }
  const wrap = (q: Pick<PGlite, 'query' | 'exec'>): SqlRunner => ({
    async query<T>(text: string, params?: unknown[]): Promise<QueryResult<T>> {
      const r = await q.query<T>(text, params as unknown[]);
      return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length, fields: r.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })) };
    },
    async exec(script: string): Promise<void> {
      await q.exec(script);
    },
  });
  const database: Database = {
    kind: 'pglite',
    label: dataDir ? `pglite:${dataDir}` : key,
    query: (text, params) => wrap(db).query(text, params),
    exec: (script) => wrap(db).exec(script),
    async transaction(fn, opts) {
      return db.transaction(async (tx) => {
        if (opts?.readOnly) await tx.query('set transaction read only');
        return fn(wrap(tx));
      });
    },
    session: (fn) => fn(wrap(db)),
    close: async () => undefined,
  };
  return { db, refs: 0, lockFile, database };
}

function takeLock(lockFile: string, dataDir: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockFile, 'wx');
      writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() }));
      closeSync(fd);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = readLock(lockFile);
      if (holder && holder.host === hostname() && !alive(holder.pid)) {
        rmSync(lockFile, { force: true }); // left by a process that died
        continue;
      }
      throw new RepriseError('STATE_LOCKED', `the embedded store ${dataDir} is in use by process ${holder?.pid ?? '?'}${holder?.host ? ` on ${holder.host}` : ''}`, {
        exit: ExitCode.refused,
        hint: 'one process at a time can open an embedded store: control a running run with reprise pause|resume|abort (they use a flag file), or use a PostgreSQL state store (--state postgres://…) for several workers',
      });
    }
  }
}

export function readLock(lockFile: string): { pid: number; host: string } | undefined {
  try {
    return JSON.parse(readFileSync(lockFile, 'utf8'));
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
