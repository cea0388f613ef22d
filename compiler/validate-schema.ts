/**
 * JSON Schema validation of a plan (ajv, all errors), translated into plan diagnostics that
 * name the field and point at it. One ajv error per real problem: alternatives of a `oneOf`
 * collapse into one message, effects are checked against their own kind only (discriminator).
 * The organisation policy file goes through the same mapping against its own schema.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Diagnostic } from './errors.js';
import type { LoadedYaml, PlanPath } from './load.js';
import { readSchema } from './paths.js';
import { isInstant } from './timestamp.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

interface CompiledSchema {
  ajv: Ajv2020;
  validate: ValidateFunction;
  schema: Record<string, unknown>;
}

/** @internal What a YAML document is checked against, and how messages name it. */
export interface SchemaSubject {
  /** File name in schema/. */
  schema: string;
  /** How messages name the whole document (`the plan`). */
  root: string;
  /** Where a field without a description is documented. */
  doc: string;
}

/** @internal */
export const PLAN_SUBJECT: SchemaSubject = { schema: 'plan.schema.json', root: 'the plan', doc: 'docs/plan-reference.md' };

const cache = new Map<string, CompiledSchema>();

/** @internal */
export function planSchema(): Record<string, unknown> {
  return compiled(PLAN_SUBJECT.schema).schema;
}

function compiled(name: string): CompiledSchema {
  let c = cache.get(name);
  if (!c) {
    const schema = readSchema(name);
    const ajv = new Ajv2020({ allErrors: true, discriminator: true, strict: true, strictRequired: false, strictTuples: false, allowUnionTypes: true });
    addFormats(ajv);
    ajv.addFormat('date-time', { type: 'string', validate: isInstant });
    c = { ajv, validate: ajv.compile(schema), schema };
    cache.set(name, c);
  }
  return c;
}

export function validateAgainstSchema(loaded: LoadedYaml, subject: SchemaSubject = PLAN_SUBJECT): Diagnostic[] {
  const c = compiled(subject.schema);
  if (c.validate(loaded.data)) return [];
  const errors = collapse(c.validate.errors ?? [], loaded.data, c);
  return dropImpliedMissing(errors.map((e) => toDiagnostic(e, loaded, c.schema, subject)));
}

function pointerToPath(pointer: string): Array<string | number> {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

const within = (path: string, parent: string): boolean => path === parent || path.startsWith(`${parent}/`);

/**
 * One error per real problem. A failed `oneOf` reports the errors of the one alternative the
 * value's JSON type selects (`ordering: { partitionby: x }` is an unknown key, not "none of the
 * forms"), or a single "one of the allowed forms" error when the type selects none or several;
 * the alternatives' own errors never leak out beside it. `propertyNames` wrappers give way to the
 * error about the name itself, and `unevaluatedProperties` to the same `additionalProperties`.
 */
function collapse(errors: ErrorObject[], data: unknown, c: CompiledSchema): ErrorObject[] {
  const list = errors.filter((e) => e.keyword !== 'propertyNames');
  const oneOfs = list.filter((e) => e.keyword === 'oneOf').sort((x, y) => x.instancePath.length - y.instancePath.length);
  const handled: string[] = [];
  const explained: ErrorObject[] = [];
  for (const o of oneOfs) {
    if (handled.some((h) => within(o.instancePath, h))) continue;
    handled.push(o.instancePath);
    explained.push(...explainOneOf(o, data, c));
  }
  const seen = new Set<string>();
  const out: ErrorObject[] = [];
  for (const e of [...list.filter((x) => !handled.some((h) => within(x.instancePath, h))), ...explained]) {
    const key = `${e.instancePath}|${e.keyword === 'unevaluatedProperties' ? 'additionalProperties' : e.keyword}|${JSON.stringify(e.params)}`.replace('unevaluatedProperty', 'additionalProperty');
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(e);
  }
  return out.sort((x, y) => (x.instancePath < y.instancePath ? -1 : x.instancePath > y.instancePath ? 1 : 0));
}

function explainOneOf(o: ErrorObject, data: unknown, c: CompiledSchema): ErrorObject[] {
  const path = pointerToPath(o.instancePath);
  const value = valueAt(data, path);
  // ajv's schemaPath is relative to the innermost $ref, so find the alternatives by walking the schema.
  const node = schemaAt(c.schema, path, data);
  const branches = node?.oneOf;
  if (!Array.isArray(branches)) return [o];
  const type = jsonType(value);
  const matching = branches.filter((b) => branchTypes(resolveRef(c.schema, b)).includes(type));
  if (matching.length !== 1) return [o];
  const pointer = pointerOf(c.schema, matching[0]);
  const sub = pointer === undefined ? undefined : c.ajv.getSchema(`${String(c.schema.$id ?? '')}${pointer}`);
  if (!sub || sub(value)) return [o];
  const inner = (sub.errors ?? []).map((e) => ({ ...e, instancePath: o.instancePath + e.instancePath }));
  return collapse(inner, data, c);
}

/** JSON pointer (`#/...`) of a node of the schema, found by identity. */
function pointerOf(root: unknown, target: unknown, at = '#'): string | undefined {
  if (root === target) return at;
  if (root === null || typeof root !== 'object') return undefined;
  for (const [k, v] of Object.entries(root)) {
    const found = pointerOf(v, target, `${at}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** The JSON types a schema alternative accepts (from `type`, `enum` or `const`). */
function branchTypes(b: Record<string, unknown> | undefined): string[] {
  if (!b) return [];
  const add = (t: string): string[] => (t === 'number' ? ['number', 'integer'] : [t]);
  if (typeof b.type === 'string') return add(b.type);
  if (Array.isArray(b.type)) return (b.type as string[]).flatMap(add);
  if (Array.isArray(b.enum)) return [...new Set((b.enum as unknown[]).map(jsonType))];
  if ('const' in b) return [jsonType(b.const)];
  return [];
}

function pointerGet(root: unknown, pointer: string): unknown {
  let cur = root;
  for (const seg of pointer.replace(/^#\/?/, '').split('/').filter(Boolean)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}

function resolveRef(root: Record<string, unknown>, n: unknown): Record<string, unknown> | undefined {
  let cur = n as Record<string, unknown> | undefined;
  for (let i = 0; i < 8 && cur && typeof cur.$ref === 'string'; i++) cur = pointerGet(root, cur.$ref) as Record<string, unknown> | undefined;
  return cur;
}

/** A misspelt key and a "missing" field it was meant to be are one problem: keep the UNKNOWN_KEY. */
function dropImpliedMissing(diags: Diagnostic[]): Diagnostic[] {
  const meant = new Set(
    diags
      .filter((d) => d.code === 'UNKNOWN_KEY' && typeof d.details?.suggestion === 'string' && d.path)
      .map((d) => JSON.stringify([...d.path!.slice(0, -1), d.details!.suggestion])),
  );
  return diags.filter((d) => !(d.code === 'MISSING_FIELD' && d.path && meant.has(JSON.stringify(d.path))));
}

function fieldName(path: PlanPath, root = PLAN_SUBJECT.root): string {
  return path.length === 0 ? root : `\`${dottedPath(path)}\``;
}

/** `a.b[2].c`: a path as messages write it. */
export function dottedPath(path: PlanPath): string {
  let s = '';
  for (const seg of path) s += typeof seg === 'number' ? `[${seg}]` : s ? `.${seg}` : seg;
  return s;
}

/** The schema node describing the value at `path` (following $ref, properties, items). */
function schemaAt(root: Record<string, unknown>, path: PlanPath, data: unknown): Record<string, unknown> | undefined {
  let node: Record<string, unknown> | undefined = root;
  let value = data;
  const resolve = (n: Record<string, unknown> | undefined): Record<string, unknown> | undefined => {
    let cur = n;
    for (let i = 0; i < 8 && cur && typeof cur.$ref === 'string'; i++) {
      const ref = cur.$ref.replace(/^#\//, '').split('/');
      let target: unknown = root;
      for (const r of ref) target = (target as Record<string, unknown>)[r];
      cur = target as Record<string, unknown>;
    }
    return cur;
  };
  for (const seg of path) {
    node = resolve(node);
    if (!node) return undefined;
    let next: Record<string, unknown> | undefined;
    const props = node.properties as Record<string, Record<string, unknown>> | undefined;
    if (typeof seg === 'string' && props?.[seg]) next = props[seg];
    else if (typeof seg === 'number' && node.items) next = node.items as Record<string, unknown>;
    else if (typeof seg === 'string' && node.additionalProperties && typeof node.additionalProperties === 'object') next = node.additionalProperties as Record<string, unknown>;
    if (!next && Array.isArray(node.oneOf)) {
      // Effects: pick the branch of this value's kind.
      const kind = (value as Record<string, unknown> | undefined)?.kind;
      for (const b of node.oneOf as Record<string, unknown>[]) {
        const br = resolve(b);
        const bp = br?.properties as Record<string, Record<string, unknown>> | undefined;
        if (bp?.kind?.const === kind && typeof seg === 'string') {
          next = bp?.[seg] ?? (resolve((br?.allOf as Record<string, unknown>[] | undefined)?.[0])?.properties as Record<string, Record<string, unknown>> | undefined)?.[seg];
        }
      }
    }
    if (!next && Array.isArray(node.allOf)) {
      const common = resolve((node.allOf as Record<string, unknown>[])[0]);
      next = (common?.properties as Record<string, Record<string, unknown>> | undefined)?.[String(seg)];
    }
    node = next;
    value = value === null || value === undefined ? undefined : (value as Record<string | number, unknown>)[seg as never];
  }
  return resolve(node);
}

function knownKeys(root: Record<string, unknown>, path: PlanPath, data: unknown): string[] {
  const node = schemaAt(root, path, data);
  if (!node) return [];
  const value = valueAt(data, path) as Record<string, unknown> | undefined;
  const keys = new Set<string>();
  const collect = (n: Record<string, unknown> | undefined): void => {
    if (!n) return;
    for (const k of Object.keys((n.properties as object | undefined) ?? {})) keys.add(k);
    for (const sub of (n.allOf as unknown[] | undefined) ?? []) collect(resolveRef(root, sub));
  };
  collect(node);
  if (Array.isArray(node.oneOf)) {
    const branches = (node.oneOf as unknown[]).map((b) => resolveRef(root, b)).filter((b): b is Record<string, unknown> => b !== undefined);
    // A discriminated effect: only its own kind's keys; otherwise every object alternative's.
    const ofKind = branches.filter((b) => (b.properties as Record<string, Record<string, unknown>> | undefined)?.kind?.const === value?.kind);
    for (const b of ofKind.length ? ofKind : branches.filter((x) => branchTypes(x).includes('object'))) collect(b);
  }
  return [...keys];
}

/** The value at `path` in parsed YAML data, or undefined when the path does not exist. */
export function valueAt(data: unknown, path: PlanPath): unknown {
  let cur = data;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[seg as never];
  }
  return cur;
}

function toDiagnostic(e: ErrorObject, loaded: LoadedYaml, schema: Record<string, unknown>, subject: SchemaSubject): Diagnostic {
  const path = pointerToPath(e.instancePath);
  const field = fieldName(path, subject.root);
  const described = (p: PlanPath): string | undefined => schemaAt(schema, p, loaded.data)?.description as string | undefined;
  const params = e.params as Record<string, unknown>;
  if (typeof e.propertyName === 'string') {
    // An invalid key inside a map of names (`connections`): point at the key itself.
    const keyPath = [...path, e.propertyName];
    return {
      code: 'INVALID_FORMAT',
      message: `${field}: \`${e.propertyName}\` is not a valid name`,
      hint: typeof params.pattern === 'string' ? `names must match ${params.pattern}` : 'rename it',
      at: loaded.locate(keyPath, 'key'),
      path: keyPath,
    };
  }
  switch (e.keyword) {
    case 'additionalProperties':
    case 'unevaluatedProperties': {
      const key = String(params.additionalProperty ?? params.unevaluatedProperty);
      const keyPath = [...path, key];
      const known = knownKeys(schema, path, loaded.data);
      const guess = closest(key, known);
      return {
        code: 'UNKNOWN_KEY',
        message: `unknown key \`${key}\` in ${field}`,
        hint: guess ? `did you mean \`${guess}\`?` : known.length ? `allowed keys: ${known.join(', ')}` : 'remove it',
        at: loaded.locate(keyPath, 'key'),
        path: keyPath,
        ...(guess ? { details: { suggestion: guess } } : {}),
      };
    }
    case 'required': {
      const missing = String(params.missingProperty);
      const desc = described([...path, missing]);
      return {
        code: 'MISSING_FIELD',
        message: `${fieldName([...path, missing])} is required`,
        hint: desc ? `add it: ${desc}` : 'add it',
        at: loaded.locate(path, 'value'),
        path: [...path, missing],
      };
    }
    case 'discriminator': {
      const kind = valueAt(loaded.data, [...path, 'kind']);
      return {
        code: 'UNKNOWN_EFFECT_KIND',
        message: kind === undefined ? `${field} has no \`kind\`` : `${field}: unknown effect kind \`${String(kind)}\``,
        hint: 'kind is one of sql, http, redis-stream, module',
        at: loaded.locate(kind === undefined ? path : [...path, 'kind']),
        path: [...path, 'kind'],
      };
    }
    case 'type':
    case 'const':
    case 'enum':
    case 'oneOf': {
      const desc = described(path);
      const allowed = e.keyword === 'enum' ? `one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` :
        e.keyword === 'const' ? `${JSON.stringify(params.allowedValue)}` :
        e.keyword === 'type' ? `of type ${String(params.type)}` : 'one of the allowed forms';
      return {
        code: 'INVALID_VALUE',
        message: `${field} must be ${allowed}, got ${preview(valueAt(loaded.data, path))}`,
        hint: desc ?? `see ${subject.doc}`,
        at: loaded.locate(path),
        path,
      };
    }
    case 'format':
      return {
        code: 'INVALID_TIMESTAMP',
        message: `${field} must be an ISO 8601 ${String(params.format)} with a zone, got ${preview(valueAt(loaded.data, path))}`,
        hint: 'write it like 2026-10-01T00:00:00Z (a date that exists, a zone, no leap second)',
        at: loaded.locate(path),
        path,
      };
    case 'pattern': {
      const desc = described(path);
      return {
        code: 'INVALID_FORMAT',
        message: `${field} has an invalid format: ${preview(valueAt(loaded.data, path))}`,
        hint: desc ?? `must match ${String(params.pattern)}`,
        at: loaded.locate(path),
        path,
      };
    }
    default: {
      const desc = described(path);
      return {
        code: 'OUT_OF_RANGE',
        message: `${field} ${e.message ?? 'is invalid'}, got ${preview(valueAt(loaded.data, path))}`,
        hint: desc ?? `see ${subject.doc}`,
        at: loaded.locate(path),
        path,
      };
    }
  }
}

function preview(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** The allowed key closest to a misspelled one (edit distance <= 3), if any. */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) { bestD = d; best = c; }
  }
  return bestD <= Math.max(1, Math.min(3, Math.floor(word.length / 3))) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}
