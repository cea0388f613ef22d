/** Locations inside the installed package (works from sources and from dist/). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(start: string): string {
  let dir = start;
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'reprise') return dir;
    dir = dirname(dir);
  }
  throw new Error(`reprise package root not found above ${start}`);
}

/** @internal */
export const packageRoot = findRoot(dirname(fileURLToPath(import.meta.url)));
/** @internal */
export const schemaDir = join(packageRoot, 'schema');
/** Version of this reprise (the compiler version pinned in manifests). */
export const version: string = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')).version;

/** @internal */
export function readSchema(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(schemaDir, name), 'utf8'));
}
