#!/usr/bin/env node
// Generates schema/*.d.ts-style TypeScript types from the JSON Schemas (the source of truth).
// `npm run gen:types` writes them; `--check` exits 1 when a committed file is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compile } from 'json-schema-to-typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const targets = [
  ['schema/plan.schema.json', 'schema/plan.types.ts'],
  ['schema/manifest.schema.json', 'schema/manifest.types.ts'],
  ['schema/approval.schema.json', 'schema/approval.types.ts'],
  ['schema/report.schema.json', 'schema/report.types.ts'],
  ['schema/policy.schema.json', 'schema/policy.types.ts'],
];
const banner = `/* eslint-disable */
/**
 * generated — do not edit.
 * Source: {source}. Regenerate with \`npm run gen:types\`; a test fails when this file is stale.
 */`;

export async function render(source) {
  const schema = JSON.parse(readFileSync(join(root, source), 'utf8'));
  return await compile(schema, schema.title, {
    bannerComment: banner.replace('{source}', source),
    cwd: join(root, 'schema'),
    additionalProperties: false,
    unreachableDefinitions: false,
    strictIndexSignatures: true,
    format: true,
    style: { singleQuote: true, printWidth: 110 },
  });
}

const check = process.argv.includes('--check');
let stale = 0;
for (const [source, out] of targets) {
  let text;
  try { text = await render(source); } catch (e) { if (e.code === 'ENOENT') continue; throw e; }
  const path = join(root, out);
  let current = '';
  try { current = readFileSync(path, 'utf8'); } catch { /* missing */ }
  if (current === text) continue;
  if (check) { console.error(`stale: ${out} (run npm run gen:types)`); stale++; }
  else { writeFileSync(path, text); console.log(`wrote ${out}`); }
}
process.exit(stale ? 1 : 0);
