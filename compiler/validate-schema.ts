/**
 * JSON Schema validation of a plan (ajv, all errors), translated into plan diagnostics that
 * name the field and point at it. One ajv error per real problem: alternatives of a `oneOf`
 * collapse into one message, effects are checked against their own kind only (discriminator).
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Diagnostic } from './errors.js';
import type { LoadedYaml, PlanPath } from './load.js';
import { readSchema } from './paths.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

let cached: { validate: ValidateFunction; schema: Record<string, unknown> } | undefined;

/** @internal */
export function planSchema(): Record<string, unknown> {
  return compiled().schema;
}

function compiled(): { validate: ValidateFunction; schema: Record<string, unknown> } {
  if (!cached) {
    const schema = readSchema('plan.schema.json');
    const ajv = new Ajv2020({ allErrors: true, discriminator: true, strict: true, strictRequired: false, strictTuples: false, allowUnionTypes: true });
    addFormats(ajv);
    cached = { validate: ajv.compile(schema), schema };
  }
  return cached;
}

export function validateAgainstSchema(loaded: LoadedYaml): Diagnostic[] {
  const { validate, schema } = compiled();
  if (validate(loaded.data)) return [];
  const errors = collapse(validate.errors ?? []);
  return errors.map((e) => toDiagnostic(e, loaded, schema));
}

function pointerToPath(pointer: string): Array<string | number> {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** Drops errors from inside failed `oneOf` alternatives, keeping the `oneOf` error itself. */
function collapse(errors: ErrorObject[]): ErrorObject[] {
  const oneOfs = errors.filter((e) => e.keyword === 'oneOf');
  const inside = (e: ErrorObject): boolean =>
    oneOfs.some((o) => e !== o && e.instancePath === o.instancePath && e.schemaPath.startsWith(o.schemaPath.replace(/\/oneOf$/, '/oneOf/')));
  const seen = new Set<string>();
  const out: ErrorObject[] = [];
  for (const e of errors) {
    if (inside(e)) continue;
    // unevaluatedProperties repeats what additionalProperties already said.
    const key = `${e.instancePath}|${e.keyword === 'unevaluatedProperties' ? 'additionalProperties' : e.keyword}|${JSON.stringify(e.params)}`;
    const k2 = key.replace('unevaluatedProperty', 'additionalProperty');
    if (seen.has(k2)) continue;
    seen.add(k2);
    out.push(e);
  }
  return out;
}

function fieldName(path: PlanPath): string {
  if (path.length === 0) return 'the plan';
  let s = '';
  for (const seg of path) s += typeof seg === 'number' ? `[${seg}]` : s ? `.${seg}` : seg;
  return `\`${s}\``;
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
  const keys = new Set(Object.keys((node.properties as object | undefined) ?? {}));
  const resolveRef = (n: unknown): Record<string, unknown> | undefined => {
    const ref = (n as Record<string, unknown> | undefined)?.$ref;
    if (typeof ref !== 'string') return n as Record<string, unknown> | undefined;
    let target: unknown = root;
    for (const r of ref.replace(/^#\//, '').split('/')) target = (target as Record<string, unknown>)[r];
    return target as Record<string, unknown>;
  };
  for (const sub of (node.allOf as unknown[] | undefined) ?? []) {
    for (const k of Object.keys((resolveRef(sub)?.properties as object | undefined) ?? {})) keys.add(k);
  }
  return [...keys];
}

function valueAt(data: unknown, path: PlanPath): unknown {
  let cur = data;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[seg as never];
  }
  return cur;
}

function toDiagnostic(e: ErrorObject, loaded: LoadedYaml, schema: Record<string, unknown>): Diagnostic {
  const path = pointerToPath(e.instancePath);
  const field = fieldName(path);
  const described = (p: PlanPath): string | undefined => schemaAt(schema, p, loaded.data)?.description as string | undefined;
  const params = e.params as Record<string, unknown>;
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
        hint: desc ?? 'see docs/plan-reference.md',
        at: loaded.locate(path),
        path,
      };
    }
    case 'format':
      return {
        code: 'INVALID_TIMESTAMP',
        message: `${field} must be an ISO 8601 ${String(params.format)} with a zone, got ${preview(valueAt(loaded.data, path))}`,
        hint: 'write it like 2026-10-01T00:00:00Z',
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
        hint: desc ?? 'see docs/plan-reference.md',
        at: loaded.locate(path),
        path,
      };
    }
  }
}

function preview(v: unknown): string {
  if (v === undefined) return 'nothing';
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
