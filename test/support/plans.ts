/**
 * Test copies of plans: an example plan (or any plan) written into a temp directory with some
 * fields overridden (a test-sized rate, count guard, namespace), with its handler and modules
 * copied beside it so relative paths still resolve.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';

export const examplesDir = resolve(import.meta.dirname, '..', '..', 'plans', 'examples');

export interface PlanCopy {
  dir: string;
  path: string;
  data: Record<string, unknown>;
}

type Patch = Record<string, unknown>;

function merge(target: Record<string, unknown>, patch: Patch): Record<string, unknown> {
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete target[k];
    else if (v && typeof v === 'object' && !Array.isArray(v) && target[k] && typeof target[k] === 'object' && !Array.isArray(target[k])) merge(target[k] as Record<string, unknown>, v as Patch);
    else target[k] = v;
  }
  return target;
}

/**
 * Copies `plan` into a fresh temp dir, applying `patch` (deep merge; undefined deletes a key)
 * and then `edit` (for changes inside lists, such as one effect's stream).
 */
export function copyPlan(plan: string, patch: Patch = {}, edit?: (data: Record<string, any>) => void, dir = mkdtempSync(join(tmpdir(), 'reprise-plan-'))): PlanCopy {
  const src = resolve(plan);
  const data = merge(parse(readFileSync(src, 'utf8')) as Record<string, unknown>, patch);
  edit?.(data);
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const processing = data.processing as { handler?: string } | undefined;
  if (processing?.handler) files.push(processing.handler);
  for (const e of (data.sideEffects as Array<Record<string, unknown>> | undefined) ?? []) if (typeof e.module === 'string') files.push(e.module);
  const source = data.source as { jsonl?: string } | undefined;
  if (source?.jsonl) files.push(source.jsonl);
  for (const f of files) {
    const from = resolve(dirname(src), f);
    const to = resolve(dir, f);
    mkdirSync(dirname(to), { recursive: true });
    if (existsSync(from) && !existsSync(to)) copyFileSync(from, to);
  }
  if (!existsSync(join(dir, 'package.json'))) writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  const path = join(dir, basename(src));
  writeFileSync(path, stringify(data));
  return { dir, path, data };
}

/** A temp dir inside the repository (.tmp/), where modules of a plan can import the repository's dependencies. */
export function repoTempDir(prefix: string): string {
  const base = resolve(import.meta.dirname, '..', '..', '.tmp');
  mkdirSync(base, { recursive: true });
  return mkdtempSync(join(base, `${prefix}-`));
}

/** Writes a plan (an object) and files (name -> content) into a fresh temp dir. */
export function writePlan(name: string, data: Record<string, unknown>, files: Record<string, string> = {}, dir = mkdtempSync(join(tmpdir(), 'reprise-plan-'))): PlanCopy {
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  for (const [f, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    writeFileSync(join(dir, f), content);
  }
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, stringify(data));
  return { dir, path, data };
}
