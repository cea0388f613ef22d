/**
 * The JSON Schemas reprise ships (schema/*.schema.json), by name: what `reprise schema` prints,
 * for editors (`# yaml-language-server: $schema=…`) and for tools that check reprise's files.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, RepriseError } from './errors.js';
import { schemaDir } from './paths.js';

/** Every shipped schema, in the order `reprise schema --help` lists them; `plan` is the default. */
export const SCHEMA_NAMES = ['plan', 'manifest', 'approval', 'report'] as const;
export type SchemaName = (typeof SCHEMA_NAMES)[number];

/** Where a schema lives in the installed package (`<package>/schema/<name>.schema.json`). */
export function schemaPath(name: SchemaName): string {
  return join(schemaDir, `${name}.schema.json`);
}

/** The schema file's exact text. Refuses (exit 2) a name reprise does not ship. */
export function schemaText(name: string): string {
  if (!(SCHEMA_NAMES as readonly string[]).includes(name)) {
    throw new RepriseError('USAGE', `no schema named ${JSON.stringify(name)}`, {
      exit: ExitCode.invalidInput,
      hint: `one of ${SCHEMA_NAMES.join(', ')}`,
    });
  }
  return readFileSync(schemaPath(name as SchemaName), 'utf8');
}
