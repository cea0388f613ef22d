/**
 * The dedupe store shared by the backfill and live consumers (reprise/live). A claim is the
 * right to apply an effect once for a key: Redis `SET NX` or a unique insert into
 * reprise.dedupe_keys. Each claim remembers its owner (the run id, or a live consumer) and the
 * item that claimed it, and moves from `claimed` to `applied` when confirmed.
 *
 * Any error reaching the store is a DedupeUnavailableError: the gate fails closed and never
 * applies a guarded effect without a claim.
 */
import type { Redis } from 'ioredis';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import type { Database, SqlRunner } from '../db/database.js';

export type ClaimOutcome =
  /** Fresh claim: apply, then confirm. */
  | { outcome: 'claimed' }
  /** Already claimed by this owner for this item (an attempt that crashed or was fenced). */
  | { outcome: 'own'; state: 'claimed' | 'applied' }
  /** Claimed by someone else (live, another run) or by this run for another item: a duplicate. */
  | { outcome: 'taken'; owner: string; state: string };

export interface DedupeStore {
  readonly kind: 'redis' | 'postgres';
  readonly namespace: string;
  claim(key: string, owner: string, itemKey: string): Promise<ClaimOutcome>;
  /** Marks an own claim applied. */
  confirm(key: string, owner: string, runner?: SqlRunner): Promise<void>;
  /** Drops an own claim (an apply that failed for sure, so the key is free again). */
  release(key: string, owner: string): Promise<void>;
  /** Claims many keys in one round trip (or two), in order: a key repeated later in the list is `taken`. */
  claimMany(entries: ReadonlyArray<{ key: string; itemKey: string }>, owner: string): Promise<ClaimOutcome[]>;
  /** Confirms many own claims. */
  confirmMany(keys: readonly string[], owner: string): Promise<void>;
  /** Reads a claim without taking it (dry-run). */
  peek(key: string): Promise<{ owner: string; state: string } | undefined>;
  ping(): Promise<void>;
  /** The database holding the claims (postgres store), so the chunk commit can confirm in its transaction. */
  readonly database: Database | undefined;
}

export class DedupeUnavailableError extends RepriseError {
  constructor(store: string, cause: unknown) {
    super('DEDUPE_STORE_UNREACHABLE', `the dedupe store (${store}) is unreachable: ${(cause as Error)?.message ?? String(cause)}`, {
      exit: ExitCode.stopped,
      hint: 'reprise failed closed: no guarded effect was applied without a claim. Restore the store, then run again to resume',
      cause,
    });
  }
}

interface ClaimValue {
  o: string;
  s: 'claimed' | 'applied';
  i: string;
  t: string;
}

const CONFIRM = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, c = pcall(cjson.decode, v)
if not ok or c.o ~= ARGV[1] then return 0 end
c.s = 'applied'
redis.call('SET', KEYS[1], cjson.encode(c), 'KEEPTTL')
return 1`;

const RELEASE = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, c = pcall(cjson.decode, v)
if not ok or c.o ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1`;

export function redisDedupeKey(namespace: string, key: string): string {
  return `reprise:dedupe:${namespace}:${key}`;
}

export class RedisDedupeStore implements DedupeStore {
  readonly kind = 'redis';
  readonly database = undefined;
  constructor(private readonly redis: Redis, readonly namespace: string, private readonly ttlMs: number, private readonly label = 'redis') {}

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw new DedupeUnavailableError(this.label, e);
    }
  }

  async claim(key: string, owner: string, itemKey: string): Promise<ClaimOutcome> {
    const k = redisDedupeKey(this.namespace, key);
    const value: ClaimValue = { o: owner, s: 'claimed', i: itemKey, t: new Date().toISOString() };
    return this.guard(async () => {
      const ok = await this.redis.set(k, JSON.stringify(value), 'PX', this.ttlMs, 'NX');
      if (ok === 'OK') return { outcome: 'claimed' };
      const raw = await this.redis.get(k);
      if (raw === null) {
        // Expired between the two commands: try once more.
        const again = await this.redis.set(k, JSON.stringify(value), 'PX', this.ttlMs, 'NX');
        if (again === 'OK') return { outcome: 'claimed' };
        return { outcome: 'taken', owner: 'unknown', state: 'claimed' };
      }
      const cur = parseClaim(raw);
      if (cur.o === owner && cur.i === itemKey) return { outcome: 'own', state: cur.s };
      return { outcome: 'taken', owner: cur.o, state: cur.s };
    });
  }

  async confirm(key: string, owner: string): Promise<void> {
    await this.guard(() => this.redis.eval(CONFIRM, 1, redisDedupeKey(this.namespace, key), owner));
  }

  async claimMany(entries: ReadonlyArray<{ key: string; itemKey: string }>, owner: string): Promise<ClaimOutcome[]> {
    if (!entries.length) return [];
    return this.guard(async () => {
      const at = new Date().toISOString();
      const set = this.redis.pipeline();
      for (const e of entries) set.set(redisDedupeKey(this.namespace, e.key), JSON.stringify({ o: owner, s: 'claimed', i: e.itemKey, t: at }), 'PX', this.ttlMs, 'NX');
      const setResults = (await set.exec()) ?? [];
      const out: Array<ClaimOutcome | undefined> = entries.map((_, i) => {
        const [err, ok] = setResults[i] ?? [new Error('no reply'), null];
        if (err) throw err;
        return ok === 'OK' ? { outcome: 'claimed' } : undefined;
      });
      const missing = out.map((o, i) => (o ? -1 : i)).filter((i) => i >= 0);
      if (missing.length) {
        const get = this.redis.pipeline();
        for (const i of missing) get.get(redisDedupeKey(this.namespace, entries[i]!.key));
        const got = (await get.exec()) ?? [];
        missing.forEach((i, j) => {
          const [err, raw] = got[j] ?? [new Error('no reply'), null];
          if (err) throw err;
          if (raw === null) { out[i] = { outcome: 'taken', owner: 'unknown', state: 'claimed' }; return; }
          const cur = parseClaim(String(raw));
          out[i] = cur.o === owner && cur.i === entries[i]!.itemKey ? { outcome: 'own', state: cur.s } : { outcome: 'taken', owner: cur.o, state: cur.s };
        });
      }
      return out as ClaimOutcome[];
    });
  }

  async confirmMany(keys: readonly string[], owner: string): Promise<void> {
    if (!keys.length) return;
    await this.guard(async () => {
      const p = this.redis.pipeline();
      for (const k of keys) p.eval(CONFIRM, 1, redisDedupeKey(this.namespace, k), owner);
      for (const [err] of (await p.exec()) ?? []) if (err) throw err;
    });
  }

  async release(key: string, owner: string): Promise<void> {
    await this.guard(() => this.redis.eval(RELEASE, 1, redisDedupeKey(this.namespace, key), owner));
  }

  async peek(key: string): Promise<{ owner: string; state: string } | undefined> {
    const raw = await this.guard(() => this.redis.get(redisDedupeKey(this.namespace, key)));
    if (raw === null) return undefined;
    const c = parseClaim(raw);
    return { owner: c.o, state: c.s };
  }

  async ping(): Promise<void> {
    await this.guard(() => this.redis.ping());
  }
}

function parseClaim(raw: string): ClaimValue {
  try {
    const v = JSON.parse(raw) as Partial<ClaimValue>;
    if (typeof v.o === 'string') return { o: v.o, s: v.s === 'applied' ? 'applied' : 'claimed', i: String(v.i ?? ''), t: String(v.t ?? '') };
  } catch {
    // A value written by something else: treat the key as taken.
  }
  return { o: 'foreign', s: 'applied', i: '', t: '' };
}

export class PostgresDedupeStore implements DedupeStore {
  readonly kind = 'postgres';
  constructor(readonly database: Database, readonly namespace: string, private readonly ttlMs: number) {}

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw new DedupeUnavailableError(this.database.label, e);
    }
  }

  async claim(key: string, owner: string, itemKey: string): Promise<ClaimOutcome> {
    return this.guard(async () => {
      const ins = await this.database.query<{ owner: string }>(
        `insert into reprise.dedupe_keys (namespace, key, owner, state, item_key, expires_at)
         values ($1, $2, $3, 'claimed', $4, now() + ($5::bigint * interval '1 millisecond'))
         on conflict (namespace, key) do update
            set owner = excluded.owner, state = 'claimed', item_key = excluded.item_key, at = now(), expires_at = excluded.expires_at
          where reprise.dedupe_keys.expires_at < now()
         returning owner`,
        [this.namespace, key, owner, itemKey, this.ttlMs],
      );
      if (ins.rows.length) return { outcome: 'claimed' };
      const cur = await this.database.query<{ owner: string; state: 'claimed' | 'applied'; item_key: string | null }>(
        'select owner, state, item_key from reprise.dedupe_keys where namespace = $1 and key = $2',
        [this.namespace, key],
      );
      const c = cur.rows[0];
      if (!c) return this.claim(key, owner, itemKey);
      if (c.owner === owner && c.item_key === itemKey) return { outcome: 'own', state: c.state };
      return { outcome: 'taken', owner: c.owner, state: c.state };
    });
  }

  /**
   * Claims many keys with one statement on `runner`. With `state: 'applied'` inside the chunk's
   * commit transaction the claim and the effect commit together (exactly once).
   */
  async claimMany(entries: ReadonlyArray<{ key: string; itemKey: string }>, owner: string, runner: SqlRunner = this.database, state: 'claimed' | 'applied' = 'claimed'): Promise<ClaimOutcome[]> {
    if (!entries.length) return [];
    return this.guard(async () => {
      // A key proposed twice in one INSERT … ON CONFLICT is an error: the first occurrence claims it, later ones are taken.
      const first = new Map<string, number>();
      entries.forEach((e, i) => { if (!first.has(e.key)) first.set(e.key, i); });
      const unique = [...first.values()].map((i) => entries[i]!);
      const ins = await runner.query<{ key: string }>(
        `insert into reprise.dedupe_keys (namespace, key, owner, state, item_key, expires_at)
         select $1, x.k, $2, $5, x.i, now() + ($6::bigint * interval '1 millisecond') from unnest($3::text[], $4::text[]) as x(k, i)
         on conflict (namespace, key) do update
            set owner = excluded.owner, state = excluded.state, item_key = excluded.item_key, at = now(), expires_at = excluded.expires_at
          where reprise.dedupe_keys.expires_at < now()
         returning key`,
        [this.namespace, owner, unique.map((e) => e.key), unique.map((e) => e.itemKey), state, this.ttlMs],
      );
      const claimed = new Set(ins.rows.map((r) => r.key));
      const others = unique.filter((e) => !claimed.has(e.key)).map((e) => e.key);
      const existing = new Map<string, { owner: string; state: string; item_key: string | null }>();
      if (others.length) {
        const cur = await runner.query<{ key: string; owner: string; state: string; item_key: string | null }>(
          'select key, owner, state, item_key from reprise.dedupe_keys where namespace = $1 and key = any($2::text[])',
          [this.namespace, others],
        );
        for (const r of cur.rows) existing.set(r.key, r);
      }
      return entries.map((e, i): ClaimOutcome => {
        if (first.get(e.key) !== i) return { outcome: 'taken', owner, state: 'claimed' };
        if (claimed.has(e.key)) return { outcome: 'claimed' };
        const c = existing.get(e.key);
        if (!c) return { outcome: 'taken', owner: 'unknown', state: 'claimed' };
        if (c.owner === owner && c.item_key === e.itemKey) return { outcome: 'own', state: c.state === 'applied' ? 'applied' : 'claimed' };
        return { outcome: 'taken', owner: c.owner, state: c.state };
      });
    });
  }

  async confirmMany(keys: readonly string[], owner: string, runner: SqlRunner = this.database): Promise<void> {
    if (!keys.length) return;
    await this.guard(() =>
      runner.query(`update reprise.dedupe_keys set state = 'applied', at = now() where namespace = $1 and key = any($2::text[]) and owner = $3`, [this.namespace, [...keys], owner]),
    );
  }

  async confirm(key: string, owner: string, runner: SqlRunner = this.database): Promise<void> {
    await this.guard(() =>
      runner.query(`update reprise.dedupe_keys set state = 'applied', at = now() where namespace = $1 and key = $2 and owner = $3`, [this.namespace, key, owner]),
    );
  }

  async release(key: string, owner: string): Promise<void> {
    await this.guard(() => this.database.query('delete from reprise.dedupe_keys where namespace = $1 and key = $2 and owner = $3', [this.namespace, key, owner]));
  }

  async peek(key: string): Promise<{ owner: string; state: string } | undefined> {
    const r = await this.guard(() => this.database.query<{ owner: string; state: string }>('select owner, state from reprise.dedupe_keys where namespace = $1 and key = $2 and (expires_at is null or expires_at > now())', [this.namespace, key]));
    return r.rows[0];
  }

  async ping(): Promise<void> {
    await this.guard(() => this.database.query('select 1'));
  }
}
