/**
 * Applies one sql effect to many items in one round trip. node-postgres has no pipelining, and a
 * plan's statement is arbitrary SQL that cannot be rewritten into a multi-row form in general,
 * so the statement is wrapped, unchanged, in a loop of a session-local PL/pgSQL function:
 *
 *   create or replace function pg_temp.reprise_b_<hash>(p1 bigint[], p2 text[]) returns void …
 *     for i in 1 .. cardinality(p1) loop <statement with :name -> p<k>[i]>; end loop;
 *
 * called as `select pg_temp.reprise_b_<hash>($1::bigint[], $2::text[])`. Parameter types are
 * those PostgreSQL infers for the statement (PREPARE + pg_prepared_statements), so each value is
 * typed exactly as a bound parameter would be. Values are still bound, never spliced. Statements
 * whose parameters are themselves arrays run one by one.
 */
import { createHash } from 'node:crypto';
import { bindNamed, substituteNamed, type NamedSql } from '../../compiler/sql-params.js';
import type { Database, SqlRunner } from '../db/database.js';

interface Prepared {
  types: string[];
  fn: string;
  create: string;
  call: string;
}

export class SqlBatcher {
  private readonly prepared = new Map<string, Promise<Prepared | null>>();

  constructor(private readonly db: Database) {}

  /** The statement's parameter types as PostgreSQL infers them, or null when it cannot be batched. */
  private prepare(named: NamedSql, kind: 'exec' | 'rows'): Promise<Prepared | null> {
    const cacheKey = `${kind}:${named.text}`;
    let p = this.prepared.get(cacheKey);
    if (!p) {
      p = this.build(named, kind).catch(() => null);
      this.prepared.set(cacheKey, p);
    }
    return p;
  }

  private async build(named: NamedSql, kind: 'exec' | 'rows'): Promise<Prepared | null> {
    if (!named.params.length) return null;
    const probe = `reprise_probe_${createHash('sha256').update(named.text).digest('hex').slice(0, 12)}`;
    const types = await this.db.session(async (s) => {
      await s.query(`prepare ${probe} as ${named.sql}`);
      try {
        const r = await s.query<{ t: string[] | string }>('select parameter_types::text[] as t from pg_prepared_statements where name = $1', [probe]);
        const t = r.rows[0]?.t;
        return Array.isArray(t) ? t : parsePgArray(String(t ?? '{}'));
      } finally {
        await s.query(`deallocate ${probe}`);
      }
    });
    if (types.length !== named.params.length || types.some((t) => t.endsWith('[]') || t === 'unknown' || t === '-')) return null;
    const hash = createHash('sha256').update(`${kind}\u0000${named.text}\u0000${types.join(',')}`).digest('hex').slice(0, 16);
    const fn = `pg_temp.reprise_b_${hash}`;
    const args = named.params.map((_, k) => `p${k + 1} ${types[k]}[]`).join(', ');
    const body = substituteNamed(named.text.trim().replace(/;\s*$/, ''), (name) => `p${named.params.indexOf(name) + 1}[i]`);
    const tag = `$reprise_${hash}$`;
    const loop =
      kind === 'exec'
        ? `for i in 1 .. coalesce(cardinality(p1), 0) loop\n${body};\nend loop;`
        : `for i in 1 .. coalesce(cardinality(p1), 0) loop\nr_idx := i;\nr_row := null;\nselect to_jsonb(q) into r_row from (${body}) q limit 1;\nreturn next;\nend loop;`;
    const create =
      kind === 'exec'
        ? `create or replace function ${fn}(${args}) returns void language plpgsql as ${tag}\nbegin\n${loop}\nend\n${tag}`
        : `create or replace function ${fn}(${args}, out r_idx int, out r_row jsonb) returns setof record language plpgsql as ${tag}\nbegin\n${loop}\nend\n${tag}`;
    const call = `select * from ${fn}(${named.params.map((_, k) => `$${k + 1}::${types[k]}[]`).join(', ')})`;
    return { types, fn, create, call };
  }

  private columns(named: NamedSql, argsList: Array<Record<string, unknown>>, toParam: (v: unknown) => unknown): unknown[][] {
    const cols: unknown[][] = named.params.map(() => []);
    for (const args of argsList) {
      const { values } = bindNamed(named, args);
      values.forEach((v, k) => cols[k]!.push(toParam(v)));
    }
    return cols;
  }

  /** Executes `named` once per argument set, in order, on `tx`. */
  async execute(tx: SqlRunner, named: NamedSql, argsList: Array<Record<string, unknown>>, toParam: (v: unknown) => unknown): Promise<void> {
    if (!argsList.length) return;
    const p = argsList.length > 1 ? await this.prepare(named, 'exec') : null;
    if (!p) {
      for (const args of argsList) await tx.query(named.sql, bindNamed(named, args).values.map(toParam));
      return;
    }
    await tx.query(p.create);
    await tx.query(p.call, this.columns(named, argsList, toParam));
  }

  /** The first row `named` returns for each argument set (null when none), read on `tx`. */
  async firstRows(tx: SqlRunner, named: NamedSql, argsList: Array<Record<string, unknown>>, toParam: (v: unknown) => unknown): Promise<Array<Record<string, unknown> | null>> {
    if (!argsList.length) return [];
    const p = argsList.length > 1 ? await this.prepare(named, 'rows') : null;
    if (!p) {
      const out: Array<Record<string, unknown> | null> = [];
      for (const args of argsList) {
        const r = await tx.query(named.sql, bindNamed(named, args).values.map(toParam));
        out.push((r.rows[0] as Record<string, unknown> | undefined) ?? null);
      }
      return out;
    }
    await tx.query(p.create);
    const r = await tx.query<{ r_idx: number; r_row: Record<string, unknown> | null }>(p.call, this.columns(named, argsList, toParam));
    const out: Array<Record<string, unknown> | null> = argsList.map(() => null);
    for (const row of r.rows) out[row.r_idx - 1] = row.r_row;
    return out;
  }
}

/** `{a,b}` (a text[] as text) -> ['a', 'b']; type names never contain quotes or commas here. */
function parsePgArray(s: string): string[] {
  const inner = s.replace(/^\{|\}$/g, '');
  if (!inner) return [];
  return inner.split(',').map((x) => x.replace(/^"|"$/g, ''));
}
