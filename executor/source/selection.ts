/**
 * A SQL selection as an item source. The plan's query is wrapped, never edited:
 *   select … from (<query>) q where (key) > (lo) and (key) <= (hi) order by key limit n
 * Keys travel as text and are compared after a cast to the key columns' own types, discovered
 * from the query, so ordering is the database's. Every page is its own short read-only
 * transaction: the executor never holds a snapshot that would bloat the live tables.
 */
import pg from 'pg';
import type { Selection } from '../../schema/manifest.types.js';
import { bindNamed, parseNamedSql } from '../../compiler/sql-params.js';
import type { Database } from '../db/database.js';
import type { ChunkBounds } from '../store/store.js';
import { Reservoir, seededRandom, type CanarySpec, type Item, type ItemSource } from './types.js';

const KEY_ALIAS = '__reprise_k';

export class SelectionSource implements ItemSource {
  private readonly named;
  private readonly baseValues: unknown[];
  private keyTypes: string[] | undefined;

  constructor(private readonly db: Database, private readonly selection: Selection) {
    this.named = parseNamedSql(selection.query.trim().replace(/;\s*$/, ''));
    this.baseValues = bindNamed(this.named, { window_start: selection.window.start, window_end: selection.window.end }).values;
  }

  private get cols(): string[] {
    return this.selection.key.map((k) => `q.${pg.escapeIdentifier(k)}`);
  }

  private tuple(exprs: string[]): string {
    return exprs.length === 1 ? exprs[0]! : `(${exprs.join(', ')})`;
  }

  /** `($n::type, …)` placeholders for a key, starting at parameter `first`. */
  private keyParams(first: number, types: string[]): string {
    return this.tuple(types.map((t, i) => `$${first + i}::${t}`));
  }

  private async types(): Promise<string[]> {
    if (this.keyTypes) return this.keyTypes;
    const r = await this.db.transaction(
      (tx) => tx.query(`select ${this.cols.join(', ')} from (${this.named.sql}) q limit 0`, this.baseValues),
      { readOnly: true },
    );
    const types: string[] = [];
    for (const f of r.fields) {
      const t = await this.db.query<{ t: string }>('select format_type($1::oid, null) as t', [f.dataTypeID]);
      types.push(t.rows[0]!.t);
    }
    this.keyTypes = types;
    return types;
  }

  private keyText(): string {
    return this.cols.map((c, i) => `${c}::text as ${KEY_ALIAS}${i}`).join(', ');
  }

  private keyOf(row: Record<string, unknown>): string[] {
    return this.selection.key.map((_, i) => row[`${KEY_ALIAS}${i}`] as string);
  }

  static itemKey(parts: string[]): string {
    return parts.length === 1 ? parts[0]! : JSON.stringify(parts);
  }

  async count(): Promise<number> {
    const r = await this.db.transaction(
      (tx) => tx.query<{ n: string }>(`select count(*)::text as n from (${this.named.sql}) q`, this.baseValues),
      { readOnly: true },
    );
    return Number(r.rows[0]?.n ?? 0);
  }

  /** Rows (or only their keys) after `after` (exclusive), at most `limit`, in key order. */
  private async after(after: string[] | null, limit: number, what: 'keys' | 'rows'): Promise<Array<Record<string, unknown>>> {
    const types = await this.types();
    const values = [...this.baseValues];
    let where = '';
    if (after) {
      where = `where ${this.tuple(this.cols)} > ${this.keyParams(values.length + 1, types)}`;
      values.push(...after);
    }
    values.push(limit);
    const select = what === 'keys' ? this.keyText() : `q.*, ${this.keyText()}`;
    const r = await this.db.transaction(
      (tx) => tx.query(`select ${select} from (${this.named.sql}) q ${where} order by ${this.cols.join(', ')} limit $${values.length}`, values),
      { readOnly: true },
    );
    return r.rows;
  }

  private async keysAfter(after: string[] | null, limit: number): Promise<string[][]> {
    return (await this.after(after, limit, 'keys')).map((row) => this.keyOf(row));
  }

  async plan(chunkSize: number, canary: CanarySpec | undefined, onFull: (chunks: Array<ChunkBounds & { items: number }>) => Promise<void>): Promise<{ canary: ChunkBounds[]; items: number }> {
    const canaryChunks: Array<ChunkBounds & { items: number }> = [];
    const reservoir = canary?.pick === 'sample' ? new Reservoir<string[]>(canary.size, seededRandom(canary.seed)) : undefined;
    let firstLeft = canary?.pick === 'first' ? canary.size : 0;
    let cursor: string[] | null = null;
    let items = 0;
    let batch: Array<ChunkBounds & { items: number }> = [];
    for (;;) {
      const limit = firstLeft > 0 ? Math.min(firstLeft, chunkSize) : chunkSize;
      const keys = await this.keysAfter(cursor, limit);
      if (!keys.length) break;
      const last = keys[keys.length - 1]!;
      const bounds = { lo: cursor, hi: last, keys: null };
      items += keys.length;
      if (reservoir) for (const k of keys) reservoir.offer(k);
      if (firstLeft > 0) {
        canaryChunks.push({ ...bounds, items: keys.length });
        firstLeft -= keys.length;
      } else {
        batch.push({ ...bounds, items: keys.length });
        if (batch.length >= 200) { await onFull(batch); batch = []; }
      }
      cursor = last;
      if (keys.length < limit) break;
    }
    if (batch.length) await onFull(batch);
    if (reservoir) {
      const sample = reservoir.sample.sort((a, b) => (a.join('\u0000') < b.join('\u0000') ? -1 : 1));
      for (let i = 0; i < sample.length; i += chunkSize) { const keys = sample.slice(i, i + chunkSize); canaryChunks.push({ lo: null, hi: null, keys, items: keys.length }); }
    }
    return { canary: canaryChunks, items };
  }

  async fetch(chunk: ChunkBounds): Promise<Item[]> {
    const types = await this.types();
    const n = this.baseValues.length;
    const values: unknown[] = [...this.baseValues];
    const conds: string[] = [];
    if (chunk.keys) {
      const keys = chunk.keys as string[][];
      if (types.length === 1) {
        values.push(keys.map((k) => k[0]));
        conds.push(`${this.cols[0]} = any($${n + 1}::${types[0]}[])`);
      } else {
        const arrays = types.map((_, i) => keys.map((k) => k[i]));
        values.push(...arrays);
        conds.push(`${this.tuple(this.cols)} in (select * from unnest(${types.map((t, i) => `$${n + 1 + i}::${t}[]`).join(', ')}))`);
      }
    } else {
      if (chunk.lo) {
        conds.push(`${this.tuple(this.cols)} > ${this.keyParams(values.length + 1, types)}`);
        values.push(...(chunk.lo as string[]));
      }
      if (chunk.hi) {
        conds.push(`${this.tuple(this.cols)} <= ${this.keyParams(values.length + 1, types)}`);
        values.push(...(chunk.hi as string[]));
      }
    }
    const where = conds.length ? `where ${conds.join(' and ')}` : '';
    const r = await this.db.transaction(
      (tx) => tx.query(`select q.*, ${this.keyText()} from (${this.named.sql}) q ${where} order by ${this.cols.join(', ')}`, values),
      { readOnly: true },
    );
    return r.rows.map((row) => this.toItem(row));
  }

  private toItem(row: Record<string, unknown>): Item {
    const key = SelectionSource.itemKey(this.keyOf(row));
    const clean: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(row)) if (!k.startsWith(KEY_ALIAS)) clean[k] = v;
    return { key, row: clean };
  }

  async *pages(pageSize: number): AsyncGenerator<Item[]> {
    let cursor: string[] | null = null;
    for (;;) {
      const rows = await this.after(cursor, pageSize, 'rows');
      if (!rows.length) return;
      cursor = this.keyOf(rows[rows.length - 1]!);
      yield rows.map((row) => this.toItem(row));
      if (rows.length < pageSize) return;
    }
  }
}
