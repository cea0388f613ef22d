/** `reprise schema`: the shipped JSON Schemas, byte for byte, for editors and other tools. */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCHEMA_NAMES } from '../../compiler/schemas.js';
import { jsonLines } from '../cli/run.js';
import { reprise, root } from './helpers.js';

const file = (name: string): string => readFileSync(join(root, 'schema', `${name}.schema.json`), 'utf8');

describe('reprise schema', () => {
  it.each(SCHEMA_NAMES.map((n) => [n]))('prints schema/%s.schema.json exactly, from any folder', (name) => {
    const r = reprise(['schema', name], tmpdir());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(file(name));
  });

  it('prints the plan schema by default, and lists the four', () => {
    const r = reprise(['schema'], root);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(file('plan'));
    expect(SCHEMA_NAMES).toEqual(['plan', 'manifest', 'approval', 'report']);
  });

  it('with --json prints the schema as one JSON line', () => {
    const r = reprise(['--json', 'schema', 'manifest'], root);
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toEqual(JSON.parse(file('manifest')));
  });

  it('refuses a schema it does not ship: usage error, exit 2', () => {
    const r = reprise(['schema', 'policies'], root);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error\[USAGE\]: .*'policies'.*plan, manifest, approval, report/);
  });
});
