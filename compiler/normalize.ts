/**
 * PlanFile (as written) -> Plan (as run): every default applied, durations in milliseconds,
 * timestamps in UTC ISO 8601 with milliseconds, keys as lists, absent optional values as null,
 * connection kinds inferred, each effect's full argument list derived. Pure; runs only on a
 * plan that passed validation.
 */
import type { Effect as EffectFile, PlanFile } from '../schema/plan.types.js';
import type { Effect, Plan, Probe } from '../schema/manifest.types.js';
import { DEFAULTS } from './defaults.js';
import { parseDuration } from './duration.js';
import { connectionUses, defaultMaxConnections } from './rules.js';
import { parseNamedSql } from './sql-params.js';
import { parseTemplate } from './template.js';

const iso = (s: string): string => new Date(s).toISOString();
const ms = (d: string): number => {
  const v = parseDuration(d);
  if (v === undefined) throw new Error(`invalid duration ${d}`);
  return v;
};

export function normalize(file: PlanFile): Plan {
  const kinds = new Map<string, 'postgres' | 'redis'>();
  for (const use of connectionUses(file as unknown as Record<string, unknown>)) kinds.set(use.name, use.kind);
  const connections: Plan['connections'] = {};
  for (const name of Object.keys(file.connections).sort()) {
    connections[name] = { env: file.connections[name]!.env, kind: kinds.get(name) ?? 'unused' };
  }

  const rate = file.rate ?? {};
  const concurrency = rate.concurrency ?? DEFAULTS.rate.concurrency;
  const abort = file.abort ?? {};
  const canary = file.canary ?? {};

  return {
    reprise: 1,
    name: file.name,
    revision: file.revision,
    owner: file.owner,
    author: file.author,
    reason: file.reason,
    ticket: file.ticket ?? null,
    connections,
    selection: file.selection
      ? {
          connection: file.selection.connection,
          query: file.selection.query,
          key: typeof file.selection.key === 'string' ? [file.selection.key] : [...file.selection.key],
          window: { start: iso(file.selection.window.start), end: iso(file.selection.window.end) },
          expect: { ...file.selection.expect },
          ordering: file.selection.ordering ?? 'none',
        }
      : null,
    source: file.source
      ? {
          jsonl: file.source.jsonl,
          key: file.source.key,
          timestamp: file.source.timestamp ?? null,
          window: file.source.window ? { start: iso(file.source.window.start), end: iso(file.source.window.end) } : null,
          expect: { ...file.source.expect },
          ordering: file.source.ordering ?? 'none',
        }
      : null,
    processing: {
      handler: file.processing.handler,
      timeoutMs: file.processing.timeoutMs ?? DEFAULTS.processing.timeoutMs,
      retries: {
        max: file.processing.retries?.max ?? DEFAULTS.processing.retries.max,
        backoffMs: file.processing.retries?.backoffMs ?? DEFAULTS.processing.retries.backoffMs,
      },
    },
    sideEffects: file.sideEffects.map(normalizeEffect),
    dedupe: file.dedupe
      ? {
          store: file.dedupe.store,
          connection: file.dedupe.connection,
          namespace: file.dedupe.namespace ?? file.name,
          ttl: ms(file.dedupe.ttl ?? DEFAULTS.dedupe.ttl),
        }
      : null,
    liveBoundary: file.liveBoundary
      ? {
          cutoff: iso(file.liveBoundary.cutoff),
          watermark: file.liveBoundary.watermark ? { ...file.liveBoundary.watermark } : null,
        }
      : null,
    rate: {
      itemsPerSecond: rate.itemsPerSecond ?? DEFAULTS.rate.itemsPerSecond,
      live: rate.live ? { ...rate.live } : null,
      concurrency,
      chunkSize: rate.chunkSize ?? DEFAULTS.rate.chunkSize,
      maxConnections: rate.maxConnections ?? defaultMaxConnections(concurrency),
      checkEvery: ms(rate.checkEvery ?? DEFAULTS.rate.checkEvery),
      protect: (rate.protect ?? []).map(
        (p): Probe => ({
          name: p.name,
          connection: p.connection ?? null,
          query: p.query ?? null,
          http: p.http ? { url: p.http.url, field: p.http.field ?? null } : null,
          max: p.max,
          timeoutMs: p.timeoutMs ?? DEFAULTS.rate.probeTimeoutMs,
        }),
      ),
    },
    canary: {
      size: canary.size ?? DEFAULTS.canary.size,
      pick: canary.pick ?? DEFAULTS.canary.pick,
      validate: (canary.validate ?? []).map((v) => ({ ...v })),
    },
    abort: {
      maxErrorRate: abort.maxErrorRate ?? DEFAULTS.abort.maxErrorRate,
      errorWindow: abort.errorWindow ?? DEFAULTS.abort.errorWindow,
      maxConsecutiveErrors: abort.maxConsecutiveErrors ?? DEFAULTS.abort.maxConsecutiveErrors,
      stallAfter: ms(abort.stallAfter ?? DEFAULTS.abort.stallAfter),
      onStall: abort.onStall ?? DEFAULTS.abort.onStall,
      alert: abort.alert ? { webhook: abort.alert.webhook } : null,
    },
    checkpoint: { connection: file.checkpoint?.connection ?? null },
    approvals: {
      canary: { min: file.approvals?.canary?.min ?? DEFAULTS.approvals.canary },
      full: { min: file.approvals?.full?.min ?? DEFAULTS.approvals.full },
      reverse: { min: file.approvals?.reverse?.min ?? DEFAULTS.approvals.reverse },
    },
  };
}

/** Every argument the handler must pass to an effect. */
function argumentsOf(e: EffectFile): string[] {
  const names: string[] = [];
  const add = (n: string): void => { const root = n.split('.')[0]!; if (!names.includes(root)) names.push(root); };
  if (e.kind === 'sql') {
    parseNamedSql(e.statement).params.forEach(add);
    return names;
  }
  (e.args ?? []).forEach(add);
  if (e.dedupeKey) parseTemplate(e.dedupeKey).fields.forEach(add);
  if (e.kind === 'http' && typeof e.url === 'string') parseTemplate(e.url).fields.forEach(add);
  if (e.kind === 'http') Object.values(e.headers ?? {}).forEach((h) => h !== undefined && parseTemplate(h).fields.forEach(add));
  return names;
}

function normalizeEffect(e: EffectFile): Effect {
  const dedupes = e.backfill === 'dedupe' || e.live === 'dedupe';
  const common = {
    name: e.name,
    description: e.description ?? null,
    backfill: e.backfill,
    live: e.live,
    dedupeKey: dedupes ? (e.dedupeKey ?? null) : null,
    delivery: e.backfill === 'dedupe' ? (e.delivery ?? DEFAULTS.effect.delivery) : null,
    args: argumentsOf(e),
  };
  switch (e.kind) {
    case 'sql':
      return {
        ...common,
        kind: 'sql',
        connection: e.connection,
        statement: e.statement,
        preview: e.preview ?? null,
        idempotent: e.idempotent ?? DEFAULTS.effect.sqlIdempotent,
        reverse: e.reverse ? { statement: e.reverse.statement } : null,
      };
    case 'http':
      return {
        ...common,
        kind: 'http',
        method: e.method ?? DEFAULTS.effect.httpMethod,
        url: e.url,
        headers: Object.fromEntries(Object.entries(e.headers ?? {}).filter((kv): kv is [string, string] => kv[1] !== undefined)),
        timeoutMs: e.timeoutMs ?? DEFAULTS.effect.httpTimeoutMs,
        reverse: e.reverse ? { method: e.reverse.method ?? DEFAULTS.effect.httpMethod, url: e.reverse.url, body: (e.reverse.body as Record<string, unknown> | undefined) ?? null } : null,
      };
    case 'redis-stream':
      return {
        ...common,
        kind: 'redis-stream',
        connection: e.connection,
        stream: e.stream,
        maxLen: e.maxLen ?? null,
        reverse: e.reverse ? { fields: Object.fromEntries(Object.entries(e.reverse.fields).filter((kv): kv is [string, string] => kv[1] !== undefined)) } : null,
      };
    case 'module':
      return {
        ...common,
        kind: 'module',
        module: e.module,
        export: e.export,
        reverse: e.reverse ? { export: e.reverse.export } : null,
      };
  }
}
