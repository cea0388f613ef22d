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
import type { SqlRunner } from '../db/database.js';

interface Prepared {
  types: string[];
  fn: string;
  create: string;
  call: string;
  /** `insert … values (…)`: the same insert as one set-based statement over unnest(). */
  setBased?: { sql: string; mayConflictTwice: boolean };
}

export class SqlBatcher {
  private readonly prepared = new Map<string, Promise<Prepared | null>>();


  /**
   * The statement's parameter types as PostgreSQL infers them, or null when it cannot be batched.
   * The probe runs on `tx`, the commit transaction, under a savepoint: another connection would
   * deadlock the embedded store, whose transaction holds the whole database.
   */
  private prepare(tx: SqlRunner, named: NamedSql, kind: 'exec' | 'rows'): Promise<Prepared | null> {
    const cacheKey = `${kind}:${named.text}`;
    let p = this.prepared.get(cacheKey);
    if (!p) {
      p = this.build(tx, named, kind);
      this.prepared.set(cacheKey, p);
      // A probe that could not run (its transaction failed) is tried again by the next commit.
      p.catch(() => this.prepared.delete(cacheKey));
    }
    return p.catch(() => null);
  }

  private async build(tx: SqlRunner, named: NamedSql, kind: 'exec' | 'rows'): Promise<Prepared | null> {
    if (!named.params.length) return null;
    const probe = `reprise_probe_${createHash('sha256').update(named.text).digest('hex').slice(0, 12)}`;
    const dropProbe = async (): Promise<void> => {
      const left = await tx.query('select 1 from pg_prepared_statements where name = $1', [probe]);
      if (left.rows.length) await tx.query(`deallocate ${probe}`);
    };
    await dropProbe(); // prepared statements outlive transactions: one left by a failed commit
    await tx.query('savepoint reprise_probe');
    let types: string[];
    try {
      await tx.query(`prepare ${probe} as ${named.sql}`);
      const r = await tx.query<{ t: string[] | string }>('select parameter_types::text[] as t from pg_prepared_statements where name = $1', [probe]);
      await tx.query(`deallocate ${probe}`);
      await tx.query('release savepoint reprise_probe');
      const t = r.rows[0]?.t;
      types = Array.isArray(t) ? t : parsePgArray(String(t ?? '{}'));
    } catch {
      // Not preparable on its own (its types need the loop's context): run it item by item.
      await tx.query('rollback to savepoint reprise_probe');
      await dropProbe();
      return null;
    }
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
    return { types, fn, create, call, setBased: kind === 'exec' ? setBasedInsert(named, types) : undefined };
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
    const p = argsList.length > 1 ? await this.prepare(tx, named, 'exec') : null;
    if (!p) {
      for (const args of argsList) await tx.query(named.sql, bindNamed(named, args).values.map(toParam));
      return;
    }
    const columns = this.columns(named, argsList, toParam);
    if (p.setBased) {
      if (!p.setBased.mayConflictTwice) {
        await tx.query(p.setBased.sql, columns);
        return;
      }
      // ON CONFLICT DO UPDATE refuses to touch one row twice in a statement ("cannot affect row a
      // second time"): when two items upsert the same row, fall back to the loop, in order.
      await tx.query('savepoint reprise_batch');
      try {
        await tx.query(p.setBased.sql, columns);
        await tx.query('release savepoint reprise_batch');
        return;
      } catch (e) {
        await tx.query('rollback to savepoint reprise_batch');
        if ((e as { code?: string }).code !== '21000') throw e;
      }
    }
    await tx.query(p.create);
    await tx.query(p.call, columns);
  }

  /** The first row `named` returns for each argument set (null when none), read on `tx`. */
  async firstRows(tx: SqlRunner, named: NamedSql, argsList: Array<Record<string, unknown>>, toParam: (v: unknown) => unknown): Promise<Array<Record<string, unknown> | null>> {
    if (!argsList.length) return [];
    const p = argsList.length > 1 ? await this.prepare(tx, named, 'rows') : null;
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

/**
 * `insert into t (…) values (<exprs>) [on conflict …] [returning …]` with every parameter inside
 * the single VALUES tuple becomes `insert into t (…) select <exprs> from unnest($1::t1[], …) u(…)
 * [on conflict …]`: the same rows, in the same order, in one statement. Anything else (several
 * tuples, parameters outside the tuple, other statements) is left to the loop.
 */
export function setBasedInsert(named: NamedSql, types: string[]): { sql: string; mayConflictTwice: boolean } | undefined {
  const text = named.text.trim().replace(/;\s*$/, '');
  if (!/^insert\s+into\s/i.test(text)) return undefined;
  const at = findValuesTuple(text);
  if (!at) return undefined;
  const prefix = text.slice(0, at.valuesStart);
  const tuple = text.slice(at.open + 1, at.close);
  const suffix = text.slice(at.close + 1);
  if (/^\s*,/.test(suffix) || /\breturning\b/i.test(suffix)) return undefined;
  if (parseNamedSqlParams(prefix).length || parseNamedSqlParams(suffix).length) return undefined;
  const select = substituteNamed(tuple, (name) => `reprise_u.p${named.params.indexOf(name) + 1}`);
  const unnest = named.params.map((_, k) => `$${k + 1}::${types[k]}[]`).join(', ');
  const cols = named.params.map((_, k) => `p${k + 1}`).join(', ');
  return {
    sql: `${prefix}select ${select} from unnest(${unnest}) as reprise_u(${cols})${suffix}`,
    mayConflictTwice: /\bon\s+conflict\b[\s\S]*\bdo\s+update\b/i.test(suffix),
  };
}

function parseNamedSqlParams(text: string): string[] {
  const found: string[] = [];
  substituteNamed(text, (name) => { found.push(name); return ''; });
  return found;
}

/** Position of a top-level `values (…)` tuple, skipping literals, quoted names and comments. */
function findValuesTuple(text: string): { valuesStart: number; open: number; close: number } | undefined {
  let depth = 0;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end === -1) return undefined;
      i = end + 1;
      while (text[i] === c) { const again = text.indexOf(c, i + 1); if (again === -1) return undefined; i = again + 1; }
      continue;
    }
    if (c === '-' && next === '-') { const nl = text.indexOf('\n', i); i = nl === -1 ? text.length : nl; continue; }
    if (c === '/' && next === '*') { const end = text.indexOf('*/', i + 2); if (end === -1) return undefined; i = end + 2; continue; }
    if (c === '$') return undefined; // dollar quoting: leave it to the loop
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (depth === 0 && /[vV]/.test(c) && /^values\b/i.test(text.slice(i)) && (i === 0 || /\s|\)/.test(text[i - 1]!))) {
      let j = i + 'values'.length;
      while (j < text.length && /\s/.test(text[j]!)) j++;
      if (text[j] !== '(') return undefined;
      let d = 0;
      for (let k = j; k < text.length; k++) {
        const ch = text[k]!;
        if (ch === "'" || ch === '"') { const end = text.indexOf(ch, k + 1); if (end === -1) return undefined; k = end; continue; }
        if (ch === '(') d++;
        else if (ch === ')') { d--; if (d === 0) return { valuesStart: i, open: j, close: k }; }
      }
      return undefined;
    }
    i++;
  }
  return undefined;
}

/** `{a,b}` (a text[] as text) -> ['a', 'b']; type names never contain quotes or commas here. */
function parsePgArray(s: string): string[] {
  const inner = s.replace(/^\{|\}$/g, '');
  if (!inner) return [];
  return inner.split(',').map((x) => x.replace(/^"|"$/g, ''));
}
