/** Shared helpers of the compiler tests. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkPlan } from '../../compiler/compile.js';
import type { Diagnostic } from '../../compiler/errors.js';
import type { PlanSource } from '../../compiler/source.js';
import { fsPlanSource, sha256Hex } from '../../compiler/source.js';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const fixtures = join(root, 'test', 'compiler', 'fixtures');
export const fixture = (name: string): string => join(fixtures, name);

export function problemsOf(file: string): Diagnostic[] {
  return checkPlan(fsPlanSource(file)).diagnostics;
}

/** A plan source whose text is given, with its files read from `dir` (for rewritten plans). */
export function textSource(text: string, dir: string, file = 'plan.yaml', overrides: Record<string, string | Buffer> = {}): PlanSource {
  const read = (rel: string): Buffer | string => overrides[rel] ?? readFileSync(join(dir, rel));
  return {
    file,
    text,
    dir,
    exists: (rel) => {
      try {
        read(rel);
        return true;
      } catch {
        return false;
      }
    },
    sha256: async (rel) => sha256Hex(read(rel)),
  };
}
