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
import type { SqlRunner } from '../db/database.js';
import { loadExport, type ModuleEffectFn } from '../modules.js';
import type { Targets } from '../targets.js';

export interface ApplyContext {
  signal: AbortSignal;
  runId: string;
  itemKey: string;
  dedupeKey?: string;
  /** Stable per effect call: the dedupe key, or run/item/effect/call for other policies. */
  idempotencyKey: string;
  /** For sql effects applied inside the chunk's commit transaction. */
  runner?: SqlRunner;
}

export interface Applier {
  readonly effect: Effect;
  apply(args: Record<string, unknown>, ctx: ApplyContext): Promise<unknown>;
  /** sql effects with a preview: the row as it is now (null when absent). */
  readBefore?(args: Record<string, unknown>, runner?: SqlRunner): Promise<Record<string, unknown> | null>;
  /** Whether `reverse` needs the `before` row. */
  readonly needsBefore: boolean;
  /** Loads what the applier needs up front (module effects), so a broken module fails the start, not every item. */
  preload?(): Promise<void>;
  /** Applies the declared compensation; absent when the effect declares none. */
  reverse?(args: Record<string, unknown>, before: Record<string, unknown> | null, ctx: ApplyContext): Promise<void>;
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
function toParam(v: unknown): unknown {
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
    reverse: reverse
      ? async (args, before, ctx) => {
          const values = bind(reverse, { ...args, before: before ?? {} }, e.name);
          await (ctx.runner ?? (await db())).query(reverse.sql, values);
        }
      : undefined,
  };
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
      for (const [k, t] of headerTemplates) headers[k] = renderTemplate(t, args);
      const r = await send(e.method, urlOf(e.url, args), args, headers, e.timeoutMs, ctx.signal);
      return { status: r.status };
    },
    reverse: e.reverse
      ? async (args, _before, ctx) => {
          const rev = e.reverse!;
          const body = rev.body ? renderDeep(rev.body, args) : args;
          await send(rev.method, urlOf(rev.url, args), body, { 'Idempotency-Key': `reverse:${ctx.idempotencyKey}`, 'X-Reprise-Run': ctx.runId }, e.timeoutMs, ctx.signal);
        }
      : undefined,
  };
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
  return {
    effect: e,
    needsBefore: false,
    async apply(args) {
      return { id: await xadd(args) };
    },
    reverse: e.reverse
      ? async (args) => {
          await xadd(renderDeep(e.reverse!.fields, args) as Record<string, unknown>);
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
      return (await fn)(args, { signal: ctx.signal, runId: ctx.runId, itemKey: ctx.itemKey, dedupeKey: ctx.dedupeKey });
    },
    reverse: e.reverse
      ? async (args, _before, ctx) => {
          rev ??= loadExport(path, e.reverse!.export);
          await (await rev)(args, { signal: ctx.signal, runId: ctx.runId, itemKey: ctx.itemKey, dedupeKey: ctx.dedupeKey });
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
