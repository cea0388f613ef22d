/**
 * Loads a plan's handler and module effects: TypeScript without a build step (through tsx's
 * loader, scoped to these imports) or JavaScript. `import … from 'reprise'` in a handler resolves
 * to this very reprise, wherever the plan lives, so handlers outside this package work too.
 */
import { register } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import { ExitCode, RepriseError } from '../compiler/errors.js';
import { packageRoot } from '../compiler/paths.js';
import type { Handler } from './handler-api.js';

let hooked = false;

/** Maps the bare specifiers `reprise` and `reprise/live` to this package's build. */
function hookSelfImports(): void {
  if (hooked) return;
  hooked = true;
  const index = join(packageRoot, 'dist', 'index.js');
  const live = join(packageRoot, 'dist', 'executor', 'live', 'index.js');
  if (!existsSync(index)) return; // running from sources without a build: self-reference through package.json exports
  const hooks = `
    const map = { 'reprise': ${JSON.stringify(pathToFileURL(index).href)}, 'reprise/live': ${JSON.stringify(pathToFileURL(live).href)} };
    export async function resolve(specifier, context, next) {
      if (Object.prototype.hasOwnProperty.call(map, specifier)) return { url: map[specifier], shortCircuit: true };
      return next(specifier, context);
    }`;
  register(`data:text/javascript,${encodeURIComponent(hooks)}`);
}

async function importModule(path: string): Promise<Record<string, unknown>> {
  hookSelfImports();
  if (!existsSync(path)) {
    throw new RepriseError('FILE_NOT_FOUND', `${path} does not exist`, { exit: ExitCode.invalidInput, hint: 'paths in a plan are relative to the plan file' });
  }
  try {
    const mod = (await tsImport(pathToFileURL(path).href, import.meta.url)) as Record<string, unknown>;
    // A TypeScript file in a CommonJS package scope arrives wrapped once more.
    const inner = mod.default as Record<string, unknown> | undefined;
    if (inner && typeof inner === 'object' && 'default' in inner && Object.keys(mod).length === 1) return inner;
    return mod;
  } catch (e) {
    if (e instanceof RepriseError) throw e;
    throw new RepriseError('MODULE_LOAD_FAILED', `cannot load ${path}: ${(e as Error).message}`, {
      exit: ExitCode.invalidInput,
      hint: 'fix the module so it imports and type-checks (run it with npx tsx to see the full error)',
      cause: e,
    });
  }
}

export async function loadHandler(path: string): Promise<Handler> {
  const mod = await importModule(path);
  const handler = mod.default;
  if (typeof handler !== 'function') {
    throw new RepriseError('HANDLER_INVALID', `${path} has no default export function`, {
      exit: ExitCode.invalidInput,
      hint: "write `export default defineHandler(async (item, ctx) => { … })` with defineHandler from 'reprise'",
    });
  }
  return handler as Handler;
}

/**
 * A fencing token: the chunk an effect call's item belongs to and the generation of the lease
 * the call runs under. Each lease of a chunk has a higher generation than the one before, so a
 * target that keeps the highest generation it has seen per run and chunk, and refuses a call
 * with a lower one, refuses a worker whose lease was taken over.
 */
export interface Fence {
  chunk: number;
  generation: number;
}

export type ModuleEffectFn = (args: Record<string, unknown>, ctx: { signal: AbortSignal; runId: string; itemKey: string; dedupeKey?: string; fence?: Fence }) => Promise<unknown>;

export async function loadExport(path: string, name: string): Promise<ModuleEffectFn> {
  const mod = await importModule(path);
  const fn = mod[name];
  if (typeof fn !== 'function') {
    throw new RepriseError('MODULE_EXPORT_MISSING', `${path} does not export a function \`${name}\``, {
      exit: ExitCode.invalidInput,
      hint: 'the plan\'s `export` must name an exported async function (args, ctx) => result',
    });
  }
  return fn as ModuleEffectFn;
}
