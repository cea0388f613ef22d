/**
 * `reprise/live`: how a live consumer claims the same dedupe keys as a backfill, so that for an
 * effect with `backfill: dedupe` and `live: dedupe` the backfill and the live path together
 * apply it at most once per key.
 *
 * ```ts
 * import { createLiveClaimer } from 'reprise/live';
 * const claims = createLiveClaimer({ store: 'redis', url: process.env.EVENTS_REDIS_URL!, owner: 'live:invoicer' });
 * if (await claims.claim('invoices', `invoice-corrected:${order.id}`)) {
 *   try { await publish(order); } catch (e) { await claims.release('invoices', key); throw e; }
 *   await claims.confirm('invoices', key);
 * }
 * ```
 *
 * It is the executor's own dedupe store (executor/effects/dedupe.ts: the same Redis keys and
 * values, the same `reprise.dedupe_keys` rows), not a re-implementation, so the two sides can
 * never disagree on what a claim is. It fails closed: when the store cannot be reached, `claim`
 * throws and never returns true. See docs/live-consumers.md.
 */
import { Redis } from 'ioredis';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { parseDuration } from '../../compiler/duration.js';
import { openDatabase, parseDbUrl, redact, type Database } from '../db/database.js';
import { DedupeUnavailableError, PostgresDedupeStore, RedisDedupeStore, redisDedupeKey, type DedupeStore } from '../effects/dedupe.js';
import { migrate } from '../store/migrate.js';

export { DedupeUnavailableError, redisDedupeKey };

export interface LiveClaimerOptions {
  /** The plan's `dedupe.store`. */
  store: 'redis' | 'postgres';
  /**
   * The store's URL: the server (Redis) or database (PostgreSQL) the plan's `dedupe.connection`
   * points at. `redis://…` / `rediss://…` for Redis; `postgres://…` for PostgreSQL.
   */
  url: string;
  /** The namespace used when `claim(key)` is called without one: the plan's `dedupe.namespace`. */
  namespace?: string;
  /**
   * Who claims, recorded in every claim this claimer takes (for example `live:invoicer`). A key
   * claimed by anyone else — a backfill run, whose owner is its run id, or another live owner —
   * is a duplicate: `claim` returns false. Give every live consumer (group) its own stable name;
   * it may not look like a run id (`<plan>.r<rev>.<hash8>`).
   */
  owner: string;
  /**
   * How long a claim holds, a duration (`90d`, `12h`) or milliseconds. Use the plan's
   * `dedupe.ttl`, so a live claim lives as long as a backfill's.
   * @defaultValue '30d' (the plan's default)
   */
  ttl?: string | number;
  /**
   * What `claim` answers for a key this owner claimed earlier but never confirmed nor released
   * (a crash between claim and confirm): `at-most-once` answers false (it may have been applied;
   * never apply twice), `at-least-once` answers true (apply again; never lose one). Use the
   * effect's `delivery` from the plan. A key this owner confirmed is never claimed again.
   * @defaultValue 'at-most-once'
   */
  delivery?: 'at-most-once' | 'at-least-once';
}

/** Claims of one live owner. Every method throws DedupeUnavailableError when the store is unreachable. */
export interface LiveClaimer {
  readonly owner: string;
  /**
   * Takes the right to apply the effect of `key` once. True: apply it, then `confirm` (or
   * `release` when applying failed). False: someone applied or is applying it — a backfill run,
   * another owner, or this owner before — skip it. Throws when the store is unreachable: do
   * not apply (fail closed), retry the message later.
   */
  claim(namespace: string, key: string): Promise<boolean>;
  /** With the `namespace` option: claim in that namespace. */
  claim(key: string): Promise<boolean>;
  /** Marks this owner's claim applied (after the effect succeeded). */
  confirm(namespace: string, key: string): Promise<void>;
  confirm(key: string): Promise<void>;
  /** Drops this owner's claim (after the effect failed for sure), so the key can be claimed again. */
  release(namespace: string, key: string): Promise<void>;
  release(key: string): Promise<void>;
  /** Connects (and for PostgreSQL ensures `reprise.dedupe_keys`) now rather than at the first claim. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** What a live claim records as its item. The backfill records its item key; live has none. */
const LIVE_ITEM = 'live';
const DEFAULT_TTL = '30d';
const RUN_ID = /^[a-z0-9-]+\.r[0-9]+\.[0-9a-f]{8}$/;

function invalid(message: string, hint: string): RepriseError {
  return new RepriseError('LIVE_OPTIONS_INVALID', message, { exit: ExitCode.invalidInput, hint });
}

function ttlOf(ttl: string | number | undefined): number {
  const v = ttl ?? DEFAULT_TTL;
  const ms = typeof v === 'number' ? v : parseDuration(v);
  if (ms === undefined || !Number.isSafeInteger(ms) || ms <= 0) {
    throw invalid(`ttl ${JSON.stringify(v)} is not a positive duration`, 'use the plan\'s dedupe.ttl, e.g. "90d", or milliseconds');
  }
  return ms;
}

function checkOptions(o: LiveClaimerOptions): void {
  if (o.store !== 'redis' && o.store !== 'postgres') throw invalid(`store must be 'redis' or 'postgres', got ${JSON.stringify(o.store)}`, "use the plan's dedupe.store");
  if (typeof o.url !== 'string' || !o.url) throw invalid('url is required', "the URL of the plan's dedupe.connection");
  if (o.store === 'redis' && !/^rediss?:\/\//.test(o.url)) throw invalid(`a redis store needs a redis:// URL, got ${redact(o.url)}`, "the URL of the plan's dedupe.connection");
  if (o.store === 'postgres') parseDbUrl(o.url);
  if (typeof o.owner !== 'string' || !o.owner.trim() || o.owner.length > 200) throw invalid('owner must be a non-empty name of at most 200 characters', "name the consumer, e.g. 'live:invoicer'");
  if (RUN_ID.test(o.owner)) throw invalid(`owner ${o.owner} looks like a run id`, 'a live owner must never pass for a backfill run; use e.g. live:<consumer>');
  if (o.delivery !== undefined && o.delivery !== 'at-most-once' && o.delivery !== 'at-least-once') throw invalid(`delivery must be 'at-most-once' or 'at-least-once', got ${JSON.stringify(o.delivery)}`, "use the effect's delivery");
  if (o.namespace !== undefined && (typeof o.namespace !== 'string' || !o.namespace)) throw invalid('namespace must be a non-empty string', "the plan's dedupe.namespace");
}

/** The connection behind the claimer: a Redis client or a PostgreSQL pool, opened at first use. */
interface Backend {
  store(namespace: string): Promise<DedupeStore>;
  close(): Promise<void>;
}

function redisBackend(url: string, ttlMs: number): Backend {
  // Like the executor's own client: commands fail at once while disconnected (never queued),
  // so a claim against a Redis that is down throws instead of waiting.
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 3_000,
    commandTimeout: 5_000,
    retryStrategy: (times) => Math.min(100 * times, 1_000),
  });
  redis.on('error', () => undefined);
  const label = `redis (${redact(url)})`;
  const stores = new Map<string, DedupeStore>();
  let connecting: Promise<void> | undefined;
  return {
    async store(namespace) {
      if (redis.status === 'wait') {
        connecting ??= redis.connect().catch((e) => {
          connecting = undefined;
          throw new DedupeUnavailableError(label, e);
        });
      }
      if (connecting) await connecting;
      let s = stores.get(namespace);
      if (!s) stores.set(namespace, (s = new RedisDedupeStore(redis, namespace, ttlMs, label)));
      return s;
    },
    async close() {
      if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
      else redis.disconnect();
    },
  };
}

function postgresBackend(url: string, ttlMs: number, owner: string): Backend {
  let db: Promise<Database> | undefined;
  const stores = new Map<string, DedupeStore>();
  const label = redact(url);
  const open = async (): Promise<Database> => {
    const d = await openDatabase(url, { max: 4, applicationName: `reprise-live:${owner}`.slice(0, 63) });
    try {
      // The same numbered migrations as the executor's: creates reprise.dedupe_keys (and the
      // rest of the state schema) if absent, refuses a schema newer than this reprise.
      await migrate(d);
    } catch (e) {
      await d.close().catch(() => undefined);
      throw e;
    }
    return d;
  };
  return {
    async store(namespace) {
      db ??= open().catch((e) => {
        db = undefined;
        if (e instanceof RepriseError) throw e;
        throw new DedupeUnavailableError(label, e);
      });
      const d = await db;
      let s = stores.get(namespace);
      if (!s) stores.set(namespace, (s = new PostgresDedupeStore(d, namespace, ttlMs)));
      return s;
    },
    async close() {
      const d = await db?.catch(() => undefined);
      db = undefined;
      await d?.close().catch(() => undefined);
    },
  };
}

/** A claimer for one live owner on one dedupe store. Nothing connects until the first call (or `ready()`). */
export function createLiveClaimer(options: LiveClaimerOptions): LiveClaimer {
  checkOptions(options);
  const ttlMs = ttlOf(options.ttl);
  const owner = options.owner;
  const delivery = options.delivery ?? 'at-most-once';
  const backend = options.store === 'redis' ? redisBackend(options.url, ttlMs) : postgresBackend(options.url, ttlMs, owner);
  let closed = false;

  const target = (a: string, b: string | undefined): [string, string] => {
    if (closed) throw new RepriseError('LIVE_CLAIMER_CLOSED', 'this live claimer was closed', { exit: ExitCode.internal, hint: 'create a new one with createLiveClaimer' });
    const [namespace, key] = b === undefined ? [options.namespace, a] : [a, b];
    if (namespace === undefined) throw invalid(`no namespace for key ${JSON.stringify(a)}`, 'pass claim(namespace, key), or give createLiveClaimer a namespace');
    if (typeof namespace !== 'string' || !namespace) throw invalid('namespace must be a non-empty string', "the plan's dedupe.namespace");
    if (typeof key !== 'string' || !key) throw invalid('key must be a non-empty string', "the effect's dedupeKey, rendered for this item");
    return [namespace, key];
  };

  return {
    owner,
    async claim(a: string, b?: string): Promise<boolean> {
      const [namespace, key] = target(a, b);
      const c = await (await backend.store(namespace)).claim(key, owner, LIVE_ITEM);
      if (c.outcome === 'claimed') return true;
      if (c.outcome === 'own') return c.state === 'claimed' && delivery === 'at-least-once';
      return false;
    },
    async confirm(a: string, b?: string): Promise<void> {
      const [namespace, key] = target(a, b);
      await (await backend.store(namespace)).confirm(key, owner);
    },
    async release(a: string, b?: string): Promise<void> {
      const [namespace, key] = target(a, b);
      await (await backend.store(namespace)).release(key, owner);
    },
    async ready(): Promise<void> {
      const store = await backend.store(options.namespace ?? '');
      await store.ping();
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await backend.close();
    },
  };
}

export interface OneShotClaimOptions extends Omit<LiveClaimerOptions, 'namespace'> {}

/**
 * Claims one key with a claimer opened and closed for the purpose (scripts, one-off tools).
 * The claim stays `claimed` (never confirmed) until its ttl: use `createLiveClaimer` to confirm
 * or release.
 */
export async function claim(namespace: string, key: string, options: OneShotClaimOptions): Promise<boolean> {
  const claimer = createLiveClaimer({ ...options, namespace });
  try {
    return await claimer.claim(namespace, key);
  } finally {
    await claimer.close();
  }
}
