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
