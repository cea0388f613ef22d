/**
 * Compile-time rules of the plan language (design section 3), beyond what the JSON Schema can
 * say. Each rule has its own code and points at the field it is about. Rules run even when the
 * schema found problems, so an author sees every mistake in one run; each rule reads the plan
 * defensively and skips what is too malformed to judge.
 */
import { parseDuration } from './duration.js';
import type { Diagnostic } from './errors.js';
import type { LoadedYaml, PlanPath } from './load.js';
import { parseNamedSql } from './sql-params.js';
import { parseTemplate, TemplateSyntaxError } from './template.js';
import { isInstant } from './timestamp.js';

export interface RuleContext {
  data: Record<string, unknown>;
  loaded: LoadedYaml;
  /** Whether a file referenced by the plan (relative to the plan file) exists. */
  fileExists(relPath: string): boolean;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export const WINDOW_PARAMS = ['window_start', 'window_end'] as const;
export const HANDLER_EXTENSIONS = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'];

/** Default applied by normalize; the rule must judge the same value. */
export function defaultMaxConnections(concurrency: number): number {
  return concurrency + 1;
}
export const DEFAULT_CANARY_SIZE = 100;

export function checkRules(ctx: RuleContext): Diagnostic[] {
  const out: Diagnostic[] = [];
  const report = (code: string, path: PlanPath, message: string, hint: string, which: 'key' | 'value' = 'value'): void => {
    out.push({ code, message, hint, path, at: ctx.loaded.locate(path, which) });
  };
  for (const rule of RULES) rule(ctx, report);
  return out;
}

type Report = (code: string, path: PlanPath, message: string, hint: string, which?: 'key' | 'value') => void;
type Rule = (ctx: RuleContext, report: Report) => void;

/** The instant a timestamp names, or undefined when it is not one (the schema reports that). */
const timeOf = (v: unknown): number | undefined => {
  const s = str(v);
  if (!s || !isInstant(s)) return undefined;
  return Date.parse(s.replace(' ', 'T'));
};

/** Every place a plan names a connection, with the kind of server that use implies. */
export function connectionUses(data: Obj): Array<{ path: PlanPath; name: string; kind: 'postgres' | 'redis' }> {
  const uses: Array<{ path: PlanPath; name: string; kind: 'postgres' | 'redis' }> = [];
  const add = (path: PlanPath, v: unknown, kind: 'postgres' | 'redis'): void => {
    const name = str(v);
    if (name !== undefined) uses.push({ path, name, kind });
  };
  if (isObj(data.selection)) add(['selection', 'connection'], data.selection.connection, 'postgres');
  arr(data.sideEffects).forEach((e, i) => {
    if (!isObj(e)) return;
    if (e.kind === 'sql') add(['sideEffects', i, 'connection'], e.connection, 'postgres');
    if (e.kind === 'redis-stream') add(['sideEffects', i, 'connection'], e.connection, 'redis');
  });
  if (isObj(data.dedupe)) add(['dedupe', 'connection'], data.dedupe.connection, data.dedupe.store === 'redis' ? 'redis' : 'postgres');
  if (isObj(data.liveBoundary) && isObj(data.liveBoundary.watermark)) add(['liveBoundary', 'watermark', 'connection'], data.liveBoundary.watermark.connection, 'postgres');
  if (isObj(data.rate)) arr(data.rate.protect).forEach((p, i) => { if (isObj(p)) add(['rate', 'protect', i, 'connection'], p.connection, 'postgres'); });
  if (isObj(data.canary)) arr(data.canary.validate).forEach((v, i) => { if (isObj(v)) add(['canary', 'validate', i, 'connection'], v.connection, 'postgres'); });
  if (isObj(data.checkpoint)) add(['checkpoint', 'connection'], data.checkpoint.connection, 'postgres');
  return uses;
}

/** The arguments an effect receives: a sql statement's parameters, else its declared `args`. */
export function effectArguments(e: Obj): string[] | undefined {
  if (e.kind === 'sql') {
    const s = str(e.statement);
    return s === undefined ? undefined : parseNamedSql(s).params;
  }
  return Array.isArray(e.args) ? e.args.filter((a): a is string => typeof a === 'string') : undefined;
}

const RULES: Rule[] = [
  function sourceChoice({ data }, report) {
    const has = ['selection', 'source'].filter((k) => data[k] !== undefined);
    if (has.length === 0) report('SOURCE_CHOICE', [], 'the plan has neither `selection` nor `source`', 'add a `selection` (SQL query over a window) or a `source` (JSONL file)');
    if (has.length === 2) report('SOURCE_CHOICE', ['source'], 'the plan has both `selection` and `source`', 'keep exactly one of them', 'key');
  },

  function windows({ data }, report) {
    for (const block of ['selection', 'source'] as const) {
      const b = data[block];
      if (!isObj(b) || !isObj(b.window)) continue;
      const start = timeOf(b.window.start);
      const end = timeOf(b.window.end);
      if (start !== undefined && end !== undefined && start >= end) {
        report('WINDOW_ORDER', [block, 'window', 'start'], `\`${block}.window.start\` (${String(b.window.start)}) is not before \`${block}.window.end\` (${String(b.window.end)})`, 'the window is [start, end): start must be earlier than end');
      }
      const cutoff = isObj(data.liveBoundary) ? timeOf(data.liveBoundary.cutoff) : undefined;
      if (end !== undefined && cutoff !== undefined && end > cutoff) {
        report('WINDOW_AFTER_CUTOFF', [block, 'window', 'end'], `\`${block}.window.end\` (${String(b.window.end)}) is after \`liveBoundary.cutoff\` (${String((data.liveBoundary as Obj).cutoff)})`, 'the live path owns everything from the cutoff on; end the window at or before it');
      }
      if (block === 'source' && b.timestamp === undefined) {
        report('SOURCE_WINDOW_TIMESTAMP', ['source', 'window'], '`source.window` is set but `source.timestamp` is not', 'name the event field holding its time in `source.timestamp`', 'key');
      }
    }
  },

  function expectRange({ data }, report) {
    for (const block of ['selection', 'source'] as const) {
      const b = data[block];
      if (!isObj(b) || !isObj(b.expect)) continue;
      const min = num(b.expect.min);
      const max = num(b.expect.max);
      if (min !== undefined && max !== undefined && min > max) {
        report('EXPECT_RANGE', [block, 'expect', 'min'], `\`${block}.expect.min\` (${min}) is above \`${block}.expect.max\` (${max})`, 'the count guard is the range [min, max]');
      }
    }
  },

  function selectionParameters({ data }, report) {
    const sel = data.selection;
    if (!isObj(sel) || typeof sel.query !== 'string') return;
    const { params } = parseNamedSql(sel.query);
    for (const p of params) {
      if (!(WINDOW_PARAMS as readonly string[]).includes(p)) {
        report('UNKNOWN_PARAMETER', ['selection', 'query'], `\`selection.query\` uses \`:${p}\`, which reprise does not bind`, 'the selection query can use :window_start and :window_end only');
      }
    }
    const missing = WINDOW_PARAMS.filter((p) => !params.includes(p));
    if (missing.length) {
      report('WINDOW_NOT_BOUND', ['selection', 'query'], `\`selection.query\` does not use ${missing.map((m) => `:${m}`).join(' and ')}`, 'filter the rows on the window (e.g. created_at >= :window_start and created_at < :window_end), or the run is not confined to it');
    }
  },

  function staticQueries({ data }, report) {
    const check = (path: PlanPath, q: unknown, what: string): void => {
      if (typeof q !== 'string') return;
      const { params } = parseNamedSql(q);
      if (params.length) report('UNKNOWN_PARAMETER', path, `${what} uses \`:${params[0]}\`, but takes no parameters`, 'write the values into the query, or remove the parameter');
    };
    if (isObj(data.liveBoundary) && isObj(data.liveBoundary.watermark)) check(['liveBoundary', 'watermark', 'query'], data.liveBoundary.watermark.query, '`liveBoundary.watermark.query`');
    if (isObj(data.rate)) arr(data.rate.protect).forEach((p, i) => { if (isObj(p)) check(['rate', 'protect', i, 'query'], p.query, `\`rate.protect[${i}].query\``); });
    if (isObj(data.canary)) arr(data.canary.validate).forEach((v, i) => { if (isObj(v)) check(['canary', 'validate', i, 'query'], v.query, `\`canary.validate[${i}].query\``); });
  },

  function connections({ data }, report) {
    const declared = isObj(data.connections) ? Object.keys(data.connections) : [];
    const kinds = new Map<string, { kind: string; path: PlanPath }>();
    for (const use of connectionUses(data)) {
      const field = use.path.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('').slice(1);
      if (!declared.includes(use.name)) {
        report('UNDECLARED_CONNECTION', use.path, `\`${field}\` refers to connection \`${use.name}\`, which is not declared`, declared.length ? `declare it under \`connections\` (declared: ${declared.join(', ')})` : 'declare it under `connections` with the environment variable holding its URL');
        continue;
      }
      const prev = kinds.get(use.name);
      if (prev && prev.kind !== use.kind) {
        report('CONNECTION_KIND_CONFLICT', use.path, `\`${field}\` uses connection \`${use.name}\` as ${use.kind}, but it is used as ${prev.kind} elsewhere`, 'declare one connection per server');
      } else if (!prev) {
        kinds.set(use.name, { kind: use.kind, path: use.path });
      }
    }
  },

  function probes({ data }, report) {
    if (!isObj(data.rate)) return;
    arr(data.rate.protect).forEach((p, i) => {
      if (!isObj(p)) return;
      const sql = p.connection !== undefined || p.query !== undefined;
      const http = p.http !== undefined;
      if (sql === http || (sql && (p.connection === undefined || p.query === undefined))) {
        report('PROBE_KIND', ['rate', 'protect', i], `\`rate.protect[${i}]\` must be either a SQL probe (connection + query) or an HTTP probe (http)`, 'a SQL probe returns one row with a numeric `value`; an HTTP probe returns a number or JSON');
      }
    });
  },

  function effects(ctx, report) {
    const { data } = ctx;
    const seen = new Map<string, number>();
    const checkpointConn = isObj(data.checkpoint) ? str(data.checkpoint.connection) : undefined;
    arr(data.sideEffects).forEach((raw, i) => {
      if (!isObj(raw)) return;
      const e = raw;
      const name = str(e.name);
      const at = (...rest: Array<string | number>): PlanPath => ['sideEffects', i, ...rest];
      const label = name ? `effect \`${name}\`` : `\`sideEffects[${i}]\``;
      if (name !== undefined) {
        if (seen.has(name)) report('DUPLICATE_EFFECT', at('name'), `effect name \`${name}\` is declared twice (also sideEffects[${seen.get(name)}])`, 'effect names must be unique: the handler calls ctx.effects.<name>');
        else seen.set(name, i);
        if (name === '__proto__' || name === 'constructor' || name === 'prototype') report('RESERVED_EFFECT_NAME', at('name'), `effect name \`${name}\` is reserved`, 'choose another name');
      }

      const args = effectArguments(e);
      const isDedupe = e.backfill === 'dedupe';
      if (isDedupe || e.live === 'dedupe') {
        if (!isObj(data.dedupe)) report('DEDUPE_NO_STORE', at(isDedupe ? 'backfill' : 'live'), `${label} uses dedupe but the plan has no \`dedupe\` store`, 'add a `dedupe` block (store: redis|postgres, connection, namespace) shared with the live consumers');
        if (e.dedupeKey === undefined) report('DEDUPE_KEY_MISSING', at(isDedupe ? 'backfill' : 'live'), `${label} uses dedupe but has no \`dedupeKey\``, 'add a dedupeKey template over its arguments, e.g. "invoice-corrected:{order_id}"');
      }
      if (isDedupe && e.live !== 'dedupe' && data.liveBoundary === undefined) {
        report('DEDUPE_LIVE_UNSAFE', at('live'), `${label} has \`backfill: dedupe\` but \`live: ${String(e.live)}\` and the plan has no \`liveBoundary\``, 'backfill and live could both apply an item: set `live: dedupe` (live claims the same keys through reprise/live) or add a `liveBoundary` cutoff');
      }
      if (!isDedupe && e.delivery !== undefined) {
        report('DEDUPE_FIELDS_UNUSED', at('delivery'), `${label} sets \`delivery\` but its backfill policy is \`${String(e.backfill)}\``, '`delivery` only applies to `backfill: dedupe`; remove it or change the policy', 'key');
      }
      if (!isDedupe && e.live !== 'dedupe' && e.dedupeKey !== undefined) {
        report('DEDUPE_FIELDS_UNUSED', at('dedupeKey'), `${label} sets \`dedupeKey\` but neither backfill nor live dedupes it`, 'remove `dedupeKey`, or set `backfill: dedupe`', 'key');
      }

      const templates: Array<{ path: PlanPath; text: unknown }> = [{ path: at('dedupeKey'), text: e.dedupeKey }];
      if (e.kind === 'http') {
        templates.push({ path: at('url'), text: e.url });
        if (isObj(e.headers)) for (const [h, v] of Object.entries(e.headers)) templates.push({ path: at('headers', h), text: v });
        if (isObj(e.reverse)) {
          templates.push({ path: at('reverse', 'url'), text: e.reverse.url });
          if (isObj(e.reverse.body)) collectStrings(e.reverse.body, at('reverse', 'body'), templates);
        }
      }
      if (e.kind === 'redis-stream' && isObj(e.reverse) && isObj(e.reverse.fields)) {
        for (const [f, v] of Object.entries(e.reverse.fields)) templates.push({ path: at('reverse', 'fields', f), text: v });
      }
      for (const t of templates) {
        if (typeof t.text !== 'string') continue;
        try {
          const parsed = parseTemplate(t.text);
          if (args && e.kind === 'sql' && t.path[2] === 'dedupeKey') {
            for (const f of parsed.fields) {
              const root = f.split('.')[0]!;
              if (!args.includes(root)) report('DEDUPE_KEY_PLACEHOLDER', t.path, `\`dedupeKey\` of ${label} uses \`{${f}}\`, which is not a parameter of its statement`, `placeholders must be arguments the effect receives: ${args.map((a) => `{${a}}`).join(', ') || '(none)'}`);
            }
          } else if (args && Array.isArray(e.args) && t.path[2] === 'dedupeKey') {
            for (const f of parsed.fields) {
              const root = f.split('.')[0]!;
              if (!args.includes(root)) report('DEDUPE_KEY_PLACEHOLDER', t.path, `\`dedupeKey\` of ${label} uses \`{${f}}\`, which is not in its \`args\``, `add \`${root}\` to args, or use one of: ${args.join(', ')}`);
            }
          }
        } catch (err) {
          if (err instanceof TemplateSyntaxError) report('TEMPLATE_SYNTAX', t.path, `template of ${label} is invalid: ${err.message}`, 'placeholders are {field}; write {{ and }} for literal braces');
          else throw err;
        }
      }

      if (e.kind === 'sql') {
        if (e.idempotent === false && (checkpointConn === undefined || e.connection !== checkpointConn)) {
          report('NON_IDEMPOTENT_SQL', at('idempotent'), `${label} is not idempotent but its connection \`${String(e.connection)}\` is not \`checkpoint.connection\``, 'a non-idempotent statement must commit in the same transaction as the checkpoint: set `checkpoint.connection` to its connection, or make the statement idempotent (upsert, set-to-value)');
        }
        const stmtParams = args ?? [];
        if (typeof e.preview === 'string') {
          for (const p of parseNamedSql(e.preview).params) {
            if (!stmtParams.includes(p)) report('UNKNOWN_PARAMETER', at('preview'), `\`preview\` of ${label} uses \`:${p}\`, which is not a parameter of its statement`, `the preview query runs with the statement's arguments: ${stmtParams.map((a) => `:${a}`).join(', ') || '(none)'}`);
          }
        }
        if (isObj(e.reverse) && typeof e.reverse.statement === 'string') {
          for (const p of parseNamedSql(e.reverse.statement).params) {
            if (p.startsWith('before.')) {
              if (typeof e.preview !== 'string') report('REVERSE_NEEDS_PREVIEW', at('reverse', 'statement'), `\`reverse.statement\` of ${label} uses \`:${p}\` but the effect has no \`preview\``, 'add a `preview` query: its row is read before the effect applies and kept in the ledger');
            } else if (!stmtParams.includes(p)) {
              report('UNKNOWN_PARAMETER', at('reverse', 'statement'), `\`reverse.statement\` of ${label} uses \`:${p}\`, which is neither a parameter of its statement nor \`:before.<column>\``, `available: ${[...stmtParams.map((a) => `:${a}`), ':before.<column>'].join(', ')}`);
            }
          }
        }
      }
      if (e.kind === 'module' && typeof e.module === 'string') {
        if (!ctx.fileExists(e.module)) report('FILE_NOT_FOUND', at('module'), `module \`${e.module}\` of ${label} does not exist`, 'paths are relative to the plan file');
      }
    });
  },

  function rate({ data }, report) {
    if (!isObj(data.rate)) return;
    const r = data.rate;
    const concurrency = num(r.concurrency) ?? 1;
    const explicitMax = num(r.maxConnections);
    const maxConnections = explicitMax ?? defaultMaxConnections(concurrency);
    if (concurrency > maxConnections) {
      report('CONCURRENCY_OVER_CONNECTIONS', ['rate', 'concurrency'], `\`rate.concurrency\` (${concurrency}) is above \`rate.maxConnections\` (${maxConnections})`, 'every in-flight item may need a connection of the executor\'s own pool: raise maxConnections or lower concurrency');
    }
    if (isObj(r.live)) {
      const ips = num(r.itemsPerSecond) ?? 100;
      const live = num(r.live.itemsPerSecond);
      const cap = num(r.live.capacity);
      if (live !== undefined && cap !== undefined && ips + live > cap) {
        report('LIVE_HEADROOM', ['rate', 'itemsPerSecond'], `\`rate.itemsPerSecond\` (${ips}) plus live traffic (${live}/s) exceeds the path's capacity (${cap}/s)`, `the backfill may use at most ${Math.max(0, cap - live)}/s; lower rate.itemsPerSecond`);
      }
    }
  },

  function durations({ data }, report) {
    const check = (path: PlanPath, v: unknown): void => {
      if (typeof v !== 'string' || !/^[0-9]+(ms|s|m|h|d)$/.test(v)) return; // the schema reports malformed durations
      const ms = parseDuration(v);
      if (ms === 0) report('DURATION_ZERO', path, `\`${path.join('.')}\` is zero`, 'use a positive duration such as 5s');
      else if (ms === undefined) report('OUT_OF_RANGE', path, `\`${path.join('.')}\` (${v}) is too long to represent`, 'durations are at most 2^53 milliseconds (about 285,000 years); use a realistic value');
    };
    if (isObj(data.rate)) check(['rate', 'checkEvery'], data.rate.checkEvery);
    if (isObj(data.abort)) check(['abort', 'stallAfter'], data.abort.stallAfter);
    if (isObj(data.dedupe)) check(['dedupe', 'ttl'], data.dedupe.ttl);
  },

  function canarySize({ data }, report) {
    const block = isObj(data.selection) ? data.selection : isObj(data.source) ? data.source : undefined;
    const min = block && isObj(block.expect) ? num(block.expect.min) : undefined;
    if (min === undefined) return;
    const explicit = isObj(data.canary) ? num(data.canary.size) : undefined;
    const size = explicit ?? DEFAULT_CANARY_SIZE;
    if (size >= min) {
      const where: PlanPath = explicit !== undefined ? ['canary', 'size'] : [isObj(data.selection) ? 'selection' : 'source', 'expect', 'min'];
      report('CANARY_SIZE', where, `\`canary.size\` (${size}${explicit === undefined ? ', the default' : ''}) is not below \`expect.min\` (${min})`, 'the canary is a small part of the run: set canary.size below expect.min');
    }
  },

  function files(ctx, report) {
    const { data } = ctx;
    if (isObj(data.processing) && typeof data.processing.handler === 'string') {
      const h = data.processing.handler;
      if (!HANDLER_EXTENSIONS.some((x) => h.endsWith(x))) {
        report('HANDLER_EXTENSION', ['processing', 'handler'], `handler \`${h}\` is neither TypeScript nor JavaScript`, `use one of ${HANDLER_EXTENSIONS.join(', ')}`);
      } else if (!ctx.fileExists(h)) {
        report('FILE_NOT_FOUND', ['processing', 'handler'], `handler \`${h}\` does not exist`, 'paths are relative to the plan file');
      }
    }
    if (isObj(data.source) && typeof data.source.jsonl === 'string' && !ctx.fileExists(data.source.jsonl)) {
      report('FILE_NOT_FOUND', ['source', 'jsonl'], `JSONL source \`${data.source.jsonl}\` does not exist`, 'paths are relative to the plan file');
    }
  },
];

function collectStrings(v: unknown, path: PlanPath, out: Array<{ path: PlanPath; text: unknown }>): void {
  if (typeof v === 'string') out.push({ path, text: v });
  else if (Array.isArray(v)) v.forEach((x, i) => collectStrings(x, [...path, i], out));
  else if (isObj(v)) for (const [k, x] of Object.entries(v)) collectStrings(x, [...path, k], out);
}
