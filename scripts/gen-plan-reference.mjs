#!/usr/bin/env node
// Generates docs/plan-reference.md from schema/plan.schema.json (every field: path, type,
// whether it is required, default, description) and compiler/codes.ts (every diagnostic code).
// `npm run gen:docs` writes it; `--check` exits 1 when the committed file is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = 'docs/plan-reference.md';

const schema = JSON.parse(readFileSync(join(root, 'schema/plan.schema.json'), 'utf8'));
const { DIAGNOSTIC_CODES } = await tsImport('../compiler/codes.ts', import.meta.url);

/** Follows `$ref`s inside the plan schema. */
function resolve(node) {
  let cur = node;
  for (let i = 0; i < 8 && cur && typeof cur.$ref === 'string'; i++) {
    let t = schema;
    for (const seg of cur.$ref.replace(/^#\//, '').split('/')) t = t[seg];
    cur = t;
  }
  return cur;
}

const refName = (node) => (node && typeof node.$ref === 'string' ? node.$ref.split('/').pop() : undefined);
/** Markdown-safe text: `<name>` outside code spans would be read as HTML. */
const text = (s) => String(s).split(/(`[^`]*`)/).map((part, i) => (i % 2 ? part : part.replace(/</g, '&lt;').replace(/>/g, '&gt;'))).join('');
/** For a table cell: also escape pipes and keep it on one line. */
const esc = (s) => text(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
const DEFAULT_RE = /\s*Default:?\s+(.+?)\.(?=\s|$)/;

/** The default stated in a description (`... Default 30000.`), and the description without it. */
export function splitDefault(description) {
  const m = DEFAULT_RE.exec(description ?? '');
  if (!m) return { description: description ?? '', default: undefined };
  return { description: (description.slice(0, m.index) + description.slice(m.index + m[0].length)).trim(), default: m[1] };
}

function constraints(n) {
  const c = [];
  if (n.pattern) c.push(`pattern \`${n.pattern}\``);
  if (n.format === 'date-time') c.push('RFC 3339 with a zone');
  if (n.minimum !== undefined && n.maximum !== undefined) c.push(`${n.minimum}–${n.maximum}`);
  else if (n.minimum !== undefined) c.push(`≥ ${n.minimum}`);
  else if (n.maximum !== undefined) c.push(`≤ ${n.maximum}`);
  if (n.exclusiveMinimum !== undefined) c.push(`> ${n.exclusiveMinimum}`);
  if (n.minLength !== undefined && n.minLength > 0) c.push('non-empty');
  if (n.maxLength !== undefined) c.push(`at most ${n.maxLength} characters`);
  if (n.minItems) c.push(`at least ${n.minItems} item${n.minItems === 1 ? '' : 's'}`);
  if (n.uniqueItems) c.push('no duplicates');
  return c;
}

/** A short type for the table: `integer ≥ 1`, `"replay" \| "suppress"`, `duration`, `URL or { env }`. */
function typeOf(raw) {
  const named = refName(raw);
  if (named === 'duration') return 'duration';
  if (named === 'urlRef') return 'URL or `{ env }`';
  if (named === 'envRef') return '`{ env }`';
  if (named === 'window') return '`{ start, end }`';
  if (named === 'expect') return '`{ min, max }`';
  if (named === 'ordering') return '`"none"` | `"key"` | `{ partitionBy }`';
  if (named === 'approvalRule') return '`{ min }`';
  if (named === 'probe') return 'probe';
  if (named === 'effect') return 'effect';
  const n = resolve(raw);
  if (!n) return '';
  if ('const' in n) return `\`${JSON.stringify(n.const)}\``;
  if (Array.isArray(n.enum)) return n.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' | ');
  if (Array.isArray(n.oneOf)) return n.oneOf.map((b) => typeOf(b)).join(' or ');
  if (n.type === 'array') return `list of ${typeOf(n.items)}`;
  if (n.type === 'object' && n.additionalProperties && typeof n.additionalProperties === 'object') return `map of name → ${typeOf(n.additionalProperties)}`;
  const base = n.format === 'date-time' ? 'timestamp' : n.type ?? 'any';
  const c = constraints(n).filter((x) => !(base === 'timestamp' && x.startsWith('RFC')));
  return c.length ? `${base} (${c.join(', ')})` : base;
}

/** Rows for every field below an object schema. */
function rows(node, prefix, out, requiredNote = 'yes') {
  const n = resolve(node);
  if (!n) return;
  const props = { ...(n.properties ?? {}) };
  const required = new Set(n.required ?? []);
  for (const sub of n.allOf ?? []) {
    const s = resolve(sub);
    for (const [k, v] of Object.entries(s.properties ?? {})) if (!(k in props)) props[k] = v;
    for (const r of s.required ?? []) required.add(r);
  }
  for (const [key, raw] of Object.entries(props)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const target = resolve(raw);
    const desc = raw.description ?? target?.description ?? '';
    const { description, default: dflt } = splitDefault(desc);
    out.push({ path, type: typeOf(raw), required: required.has(key) ? requiredNote : '', default: dflt ?? '', description });
    if (!target) continue;
    const named = refName(raw);
    if (named === 'effect') continue; // documented per kind below
    if (target.type === 'object' && target.properties) rows(target, path, out);
    else if (target.type === 'object' && target.additionalProperties && typeof target.additionalProperties === 'object') {
      const v = resolve(target.additionalProperties);
      if (v?.properties) rows(v, `${path}.<name>`, out);
    } else if (target.type === 'array') {
      const items = resolve(target.items);
      if (items?.properties && refName(target.items) !== 'effect') rows(items, `${path}[]`, out);
    } else if (Array.isArray(target.oneOf)) {
      for (const b of target.oneOf) {
        const rb = resolve(b);
        if (rb?.type === 'object' && rb.properties && refName(b) !== 'envRef') rows(rb, path, out, 'yes (in this form)');
      }
    }
  }
}

function table(list) {
  const lines = ['| field | type | required | default | description |', '| --- | --- | --- | --- | --- |'];
  for (const r of list) lines.push(`| \`${r.path}\` | ${esc(r.type)} | ${r.required} | ${r.default ? esc(r.default) : ''} | ${esc(r.description)} |`);
  return lines.join('\n');
}

export function render() {
  const top = [];
  rows(schema, '', top);
  // Group the rows by their top-level section, in schema order.
  const sections = [{ head: '', rows: [] }];
  for (const r of top) {
    const head = r.path.includes('.') || r.type === 'object' || /^(map|list) of/.test(r.type) ? r.path.split(/[.[]/)[0] : '';
    let s = sections.find((x) => x.head === head);
    if (!s) sections.push((s = { head, rows: [] }));
    s.rows.push(r);
  }
  const out = [
    '# Plan reference',
    '',
    '<!-- generated by scripts/gen-plan-reference.mjs from schema/plan.schema.json and compiler/codes.ts: do not edit; run `npm run gen:docs` -->',
    '',
    text(schema.description),
    '',
    'Conventions used below:',
    '',
    '- **Durations** are strings: a whole number and a unit, `ms`, `s`, `m`, `h` or `d` (`500ms`, `2s`, `5m`, `90d`).',
    '- **Timestamps** are RFC 3339 date-times with a zone (`2026-10-01T00:00:00Z`). Windows are half-open: `[start, end)`.',
    '- **Named parameters** in SQL are `:name`; reprise binds them (`$1`, `$2`, ...) and never splices values into SQL text.',
    '- **Templates** (dedupe keys, URLs, headers, reverse fields) are `{field}` over the effect\'s arguments; `{{` and `}}` are literal braces.',
    '- **Paths** (handler, modules, JSONL source) are relative to the plan file.',
    '- A field path with `[]` is a field of every element of a list; `<name>` stands for a key you choose.',
    '- **Defaults** are applied by the compiler; the manifest and the runbook show every resolved value.',
    '',
    '## Editor support',
    '',
    'Name the schema on a plan\'s first line and editors that use the YAML language server (VS Code\'s YAML extension, JetBrains IDEs, Neovim) complete every field below, flag unknown keys and show each description on hover. The path is relative to the plan file; a comment does not change the plan\'s hash.',
    '',
    '```yaml',
    '# yaml-language-server: $schema=../node_modules/reprise/schema/plan.schema.json',
    'reprise: 1',
    '```',
    '',
    '`reprise schema` prints the schema (`reprise schema manifest`, `approval`, `report`: the others). More in [ci.md](ci.md#editor-support-the-plan-schema).',
    '',
    '## Fields',
  ];
  for (const s of sections) {
    if (s.head === '') out.push('', '### Plan header', '', 'Who, what and why: printed at the top of the runbook.', '', table(s.rows));
    else out.push('', `### \`${s.head}\``, '', text(s.rows[0].description), '', table(s.rows));
  }

  out.push('', '### `sideEffects[]` by kind', '', `${text(schema.$defs.effect.description)} Every kind has the common fields; \`kind\` selects the rest.`, '');
  const common = [];
  rows(schema.$defs.effectCommon, 'sideEffects[]', common);
  out.push('#### Common fields', '', table(common));
  for (const [def, kind] of [['sqlEffect', 'sql'], ['httpEffect', 'http'], ['redisStreamEffect', 'redis-stream'], ['moduleEffect', 'module']]) {
    const d = schema.$defs[def];
    const own = [];
    rows({ properties: d.properties, required: d.required }, 'sideEffects[]', own);
    out.push('', `#### \`kind: ${kind}\``, '', text(d.description), '', table(own));
  }

  out.push('', '## Diagnostic codes', '');
  out.push('`reprise validate` and `reprise compile` report every problem of a plan at once, each as `error[CODE]: what — hint` followed by `at <plan>:<line>:<col>`, and exit with code 2. With `--json`, each problem is one JSON object with `code`, `message`, `hint`, `file`, `line`, `col` and `path`.', '', 'With an organisation policy (`--policy FILE` or `REPRISE_POLICY`), a plan breaking it is reported the same way, with the `POLICY_*` codes of [policy.md](policy.md#codes).');
  const STAGES = [
    ['yaml', 'Reading the YAML'],
    ['schema', 'Schema (shape and types of every field)'],
    ['rule', 'Compile-time rules (what the schema cannot say)'],
    ['input', 'Reading the inputs'],
  ];
  for (const [stage, title] of STAGES) {
    out.push('', `### ${title}`, '', '| code | means | fix |', '| --- | --- | --- |');
    for (const c of DIAGNOSTIC_CODES.filter((x) => x.stage === stage)) out.push(`| \`${c.code}\` | ${esc(c.means)} | ${esc(c.fix)} |`);
  }
  return `${out.join('\n')}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = render();
  const path = join(root, OUT);
  let current = '';
  try { current = readFileSync(path, 'utf8'); } catch { /* missing */ }
  if (process.argv.includes('--check')) {
    if (current !== text) {
      console.error(`stale: ${OUT} (run npm run gen:docs)`);
      process.exit(1);
    }
  } else if (current !== text) {
    writeFileSync(path, text);
    console.log(`wrote ${OUT}`);
  }
}
