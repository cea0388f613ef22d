/**
 * Numbered, append-only migrations of the state schema (`reprise`), applied in one transaction
 * under an advisory lock so concurrent workers never race. A database migrated by a newer
 * reprise is refused rather than touched.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { packageRoot } from '../../compiler/paths.js';
import type { Database } from '../db/database.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Key of the advisory lock serializing migrations ('reprise' as a 64-bit integer). */
const MIGRATION_LOCK = '7090601459393737217';

export const migrationsDir = join(packageRoot, 'executor', 'store', 'migrations');

export function loadMigrations(dir = migrationsDir): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{6}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 6)), name: f.replace(/\.sql$/, ''), sql: readFileSync(join(dir, f), 'utf8') }));
}

export async function migrate(db: Database, migrations = loadMigrations()): Promise<{ applied: string[]; version: number }> {
  const latest = migrations.at(-1)?.version ?? 0;
  return db.transaction(async (tx) => {
    await tx.query(`select pg_advisory_xact_lock(${MIGRATION_LOCK})`);
    await tx.exec(`create schema if not exists reprise;
      create table if not exists reprise.schema_migrations (
        version integer primary key,
        name text not null,
        applied_at timestamptz not null default now()
      );`);
    const { rows } = await tx.query<{ v: number | null }>('select max(version)::int as v from reprise.schema_migrations');
    const current = rows[0]?.v ?? 0;
    if (current > latest) {
      throw new RepriseError('STATE_SCHEMA_NEWER', `the state store is at schema version ${current}, newer than this reprise knows (${latest})`, {
        exit: ExitCode.refused,
        hint: 'upgrade reprise to the version that migrated this store; never run an older reprise against it',
      });
    }
    const applied: string[] = [];
    for (const m of migrations) {
      if (m.version <= current) continue;
      await tx.exec(m.sql);
      await tx.query('insert into reprise.schema_migrations (version, name) values ($1, $2)', [m.version, m.name]);
      applied.push(m.name);
    }
    return { applied, version: Math.max(current, latest) };
  });
}
