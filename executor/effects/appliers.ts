/**
 * How each kind of effect is applied to its target, and reversed. The gate (gate.ts) decides
 * whether an effect is applied at all; an applier only does it.
 *   sql          the plan's statement, arguments bound as parameters
 *   http         method + URL from the plan, JSON body from the handler, Idempotency-Key header
 *   redis-stream XADD of the handler's fields
 *   module       an exported function of a module pinned in the manifest
 */
import { resolve } from 'node:path';
import type { Effect, HttpEffect, ModuleEffect, Plan, RedisStreamEffect, SqlEffect, UrlRef } from '../../schema/manifest.types.js';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import { bindNamed, parseNamedSql, type NamedSql } from '../../compiler/sql-params.js';
import { parseTemplate, renderTemplate } from '../../compiler/template.js';
import { redact, type SqlRunner } from '../db/database.js';
import { loadExport, type Fence, type ModuleEffectFn } from '../modules.js';
import type { Targets } from '../targets.js';

export interface ApplyContext {
  signal: AbortSignal;
  runId: string;
  itemKey: string;
  dedupeKey?: string;
  /** Stable per effect call: the dedupe key, or run/item/effect/call for other policies. */
  idempotencyKey: string;
  /** The lease the call runs under (absent in dry-run and reversal): a fencing token for targets. */
  fence?: Fence;
  /** For sql effects applied inside the chunk's commit transaction. */
  runner?: SqlRunner;
}

export interface Applier {
  readonly effect: Effect;
  apply(args: Record<string, unknown>, ctx: ApplyContext): Promise<unknown>;
  /** sql effects with a preview: the row as it is now (null when absent). */
  readBefore?(args: Record<string, unknown>, runner?: SqlRunner): Promise<Record<string, unknown> | null>;
  /**
   * sql effects with a preview, for the dry-run: the preview row before and after the statement,
   * which runs inside a transaction that is always rolled back (nothing is committed). When the
   * target refuses the statement (a read-only replica, a failing statement), `after` is
   * undefined and `error` says why; `before` is then read on its own.
   */
  previewChange?(args: Record<string, unknown>): Promise<{ before: Record<string, unknown> | null; after?: Record<string, unknown> | null; error?: string }>;
  /** Whether `reverse` needs the `before` row. */
  readonly needsBefore: boolean;
  /** sql effects: the parsed statement and preview, for batched application at commit. */
  readonly sql?: { statement: NamedSql; preview: NamedSql | undefined };
  /** Loads what the applier needs up front (module effects), so a broken module fails the start, not every item. */
  preload?(): Promise<void>;
  /**
   * The declared compensation of one applied call, with its values bound, exactly as `reverse`
   * applies it (what `reprise reverse` lists before `--execute`). Absent when none is declared.
   */
  describeReverse?(args: Record<string, unknown>, before: Record<string, unknown> | null, ctx: Pick<ApplyContext, 'runId' | 'idempotencyKey'>): Compensation;
  /** Applies the declared compensation; absent when the effect declares none. */
  reverse?(args: Record<string, unknown>, before: Record<string, unknown> | null, ctx: ApplyContext): Promise<ReverseResult>;
}

/** One compensation, bound: the statement and its values, the request, the stream entry or the module call. */
export type Compensation =
  | { kind: 'sql'; connection: string; statement: string; values: Array<{ name: string; value: unknown }> }
  | { kind: 'http'; method: string; url: string; headers: Record<string, string>; body: unknown }
  | { kind: 'redis-stream'; connection: string; stream: string; fields: Record<string, string> }
  | { kind: 'module'; module: string; export: string; args: Record<string, unknown> };

/** What a compensation reports back: rows a sql compensation changed. */
export interface ReverseResult {
  rowCount?: number;
}

/** An argument the effect needs was not passed (a handler bug: the item fails, nothing is applied). */
export class EffectArgumentError extends RepriseError {
  constructor(effect: string, missing: string[]) {
    super('EFFECT_ARGUMENT_MISSING', `effect ${effect} was called without ${missing.map((m) => `\`${m}\``).join(', ')}`, {
      exit: ExitCode.stopped,
      hint: 'the handler must pass every parameter of the effect',
    });
  }
}

export class HttpEffectError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function resolveUrl(ref: UrlRef, env: NodeJS.ProcessEnv, what: string): string {
  if (typeof ref === 'string') return ref;
  const v = env[ref.env];
  if (!v) throw new RepriseError('CONNECTION_ENV_MISSING', `${what} needs environment variable ${ref.env}, which is not set`, { exit: ExitCode.invalidInput, hint: `export ${ref.env}=<url>` });
  return v;
}

function bind(named: NamedSql, args: Record<string, unknown>, effect: string): unknown[] {
  const { values, missing } = bindNamed(named, args);
  if (missing.filter((m) => !m.startsWith('before.')).length) throw new EffectArgumentError(effect, missing);
  return values.map(toParam);
}

/** Objects and arrays travel as JSON; everything else as the driver binds it. */
export function toParam(v: unknown): unknown {
  if (v === undefined) return null;
  if (v !== null && typeof v === 'object' && !(v instanceof Date) && !Buffer.isBuffer(v)) return JSON.stringify(v);
  return v;
}

function sqlApplier(e: SqlEffect, targets: Targets): Applier {
  const statement = parseNamedSql(e.statement);
  const preview = e.preview ? parseNamedSql(e.preview) : undefined;
  const reverse = e.reverse ? parseNamedSql(e.reverse.statement) : undefined;
  const db = () => targets.sql(e.connection);
  return {
    effect: e,
    needsBefore: Boolean(reverse?.params.some((p) => p.startsWith('before.'))),
    sql: { statement, preview },
    async apply(args, ctx) {
      const values = bind(statement, args, e.name);
      const runner = ctx.runner ?? (await db());
      const r = await runner.query(statement.sql, values);
      return { rowCount: r.rowCount };
    },
    readBefore: preview
      ? async (args, runner) => {
          const r = await (runner ?? (await db())).query(preview.sql, bind(preview, args, e.name));
          return (r.rows[0] as Record<string, unknown> | undefined) ?? null;
        }
      : undefined,
    previewChange: preview
      ? async (args) => {
          const database = await db();
          const first = async (runner: SqlRunner): Promise<Record<string, unknown> | null> =>
            ((await runner.query(preview.sql, bind(preview, args, e.name))).rows[0] as Record<string, unknown> | undefined) ?? null;
          let seen: { before: Record<string, unknown> | null; after: Record<string, unknown> | null } | undefined;
          try {
            await database.transaction(async (tx) => {
              const before = await first(tx);
              await tx.query(statement.sql, bind(statement, args, e.name));
              seen = { before, after: await first(tx) };
              throw new RolledBack();
            });
          } catch (err) {
            if (!(err instanceof RolledBack)) return { before: await first(database), error: (err as Error).message };
          }
          return seen!;
        }
      : undefined,
    // `:before.<column>` of a row that did not exist binds NULL (see docs/reversal.md).
    describeReverse: reverse
      ? (args, before) => {
          const values = bind(reverse, { ...args, before: before ?? {} }, e.name);
          return { kind: 'sql', connection: e.connection, statement: reverse.text, values: reverse.params.map((name, i) => ({ name, value: values[i] })) };
        }
      : undefined,
    reverse: reverse
      ? async (args, before, ctx) => {
          const values = bind(reverse, { ...args, before: before ?? {} }, e.name);
          const r = await (ctx.runner ?? (await db())).query(reverse.sql, values);
          return { rowCount: r.rowCount };
        }
      : undefined,
  };
}

/** `X-Reprise-Fence: <chunk>.<generation>`: keep the highest generation per run and chunk, refuse a lower one. */
function fenceHeader(f: Fence): string {
  return `${f.chunk}.${f.generation}`;
}

async function send(method: string, url: string, body: unknown, headers: Record<string, string>, timeoutMs: number, signal: AbortSignal): Promise<{ status: number; body: string }> {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body ?? {}),
    signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
  });
  const text = await res.text();
  if (res.status >= 400) throw new HttpEffectError(res.status, `${method} ${url} answered ${res.status}: ${text.slice(0, 200)}`);
  return { status: res.status, body: text.slice(0, 1000) };
}

function httpApplier(e: HttpEffect, env: NodeJS.ProcessEnv): Applier {
  // A URL written in the plan may use {field} placeholders; one read from the environment is used as is.
  const urlOf = (ref: UrlRef, args: Record<string, unknown>): string => {
    const raw = resolveUrl(ref, env, `effect ${e.name}`);
    return typeof ref === 'string' ? renderTemplate(parseTemplate(raw), args) : raw;
  };
  const headerTemplates = Object.entries(e.headers).map(([k, v]) => [k, parseTemplate(v ?? '')] as const);
  return {
    effect: e,
    needsBefore: false,
    async apply(args, ctx) {
      const headers: Record<string, string> = { 'Idempotency-Key': ctx.idempotencyKey, 'X-Reprise-Run': ctx.runId };
      if (ctx.fence) headers['X-Reprise-Fence'] = fenceHeader(ctx.fence);
      for (const [k, t] of headerTemplates) headers[k] = renderTemplate(t, args);
      const r = await send(e.method, urlOf(e.url, args), args, headers, e.timeoutMs, ctx.signal);
      return { status: r.status };
    },
    describeReverse: e.reverse
      ? (args, _before, ctx) => {
          const c = reverseRequest(args, ctx);
          return { ...c, url: redact(c.url) };
        }
      : undefined,
    reverse: e.reverse
      ? async (args, _before, ctx) => {
          const c = reverseRequest(args, ctx);
          await send(c.method, c.url, c.body, c.headers, e.timeoutMs, ctx.signal);
          return {};
        }
      : undefined,
  };

  function reverseRequest(args: Record<string, unknown>, ctx: Pick<ApplyContext, 'runId' | 'idempotencyKey'>): Extract<Compensation, { kind: 'http' }> {
    const rev = e.reverse!;
    return {
      kind: 'http',
      method: rev.method,
      url: urlOf(rev.url, args),
      headers: { 'Idempotency-Key': `reverse:${ctx.idempotencyKey}`, 'X-Reprise-Run': ctx.runId },
      body: rev.body ? renderDeep(rev.body, args) : args,
    };
  }
}

function renderDeep(v: unknown, args: Record<string, unknown>): unknown {
  if (typeof v === 'string') return renderTemplate(parseTemplate(v), args);
  if (Array.isArray(v)) return v.map((x) => renderDeep(x, args));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, renderDeep(x, args)]));
  return v;
}

function streamFields(fields: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    out.push(k, typeof v === 'string' ? v : JSON.stringify(v));
  }
  if (!out.length) out.push('_', '');
  return out;
}

function redisStreamApplier(e: RedisStreamEffect, targets: Targets): Applier {
  const xadd = async (fields: Record<string, unknown>): Promise<string | null> => {
    const redis = await targets.redis(e.connection);
    const trim = e.maxLen ? ['MAXLEN', '~', String(e.maxLen)] : [];
    return (await (redis.xadd as (...a: string[]) => Promise<string | null>)(e.stream, ...trim, '*', ...streamFields(fields)));
  };
  const reverseFields = (args: Record<string, unknown>): Record<string, string> => {
    const flat = streamFields(renderDeep(e.reverse!.fields, args) as Record<string, unknown>);
    const out: Record<string, string> = {};
    for (let i = 0; i < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
    return out;
  };
  return {
    effect: e,
    needsBefore: false,
    async apply(args) {
      return { id: await xadd(args) };
    },
    describeReverse: e.reverse ? (args) => ({ kind: 'redis-stream', connection: e.connection, stream: e.stream, fields: reverseFields(args) }) : undefined,
    reverse: e.reverse
      ? async (args) => {
          await xadd(reverseFields(args));
          return {};
        }
      : undefined,
  };
}

function moduleApplier(e: ModuleEffect, planDir: string): Applier {
  let fn: Promise<ModuleEffectFn> | undefined;
  let rev: Promise<ModuleEffectFn> | undefined;
  const path = resolve(planDir, e.module);
  return {
    effect: e,
    needsBefore: false,
    async preload() {
      fn ??= loadExport(path, e.export);
      await fn;
      if (e.reverse) {
        rev ??= loadExport(path, e.reverse.export);
        await rev;
      }
    },
    async apply(args, ctx) {
      fn ??= loadExport(path, e.export);
      return (await fn)(args, { signal: ctx.signal, runId: ctx.runId, itemKey: ctx.itemKey, dedupeKey: ctx.dedupeKey, ...(ctx.fence ? { fence: ctx.fence } : {}) });
    },
    describeReverse: e.reverse ? (args) => ({ kind: 'module', module: e.module, export: e.reverse!.export, args }) : undefined,
    reverse: e.reverse
      ? async (args, _before, ctx) => {
          rev ??= loadExport(path, e.reverse!.export);
          await (await rev)(args, { signal: ctx.signal, runId: ctx.runId, itemKey: ctx.itemKey, dedupeKey: ctx.dedupeKey });
          return {};
        }
      : undefined,
  };
}

export function createAppliers(plan: Plan, targets: Targets, planDir: string, env: NodeJS.ProcessEnv = process.env): Map<string, Applier> {
  const out = new Map<string, Applier>();
  for (const e of plan.sideEffects) {
    switch (e.kind) {
      case 'sql': out.set(e.name, sqlApplier(e, targets)); break;
      case 'http': out.set(e.name, httpApplier(e, env)); break;
      case 'redis-stream': out.set(e.name, redisStreamApplier(e, targets)); break;
      case 'module': out.set(e.name, moduleApplier(e, planDir)); break;
    }
  }
  return out;
}

/** Thrown to end a preview's transaction: the statement it ran is never committed. */
class RolledBack extends Error {}
