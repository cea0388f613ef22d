/**
 * docs/approvals.md and docs/reversal.md against the code: every refusal code the go/no-go and
 * the reversal can raise is documented, and the go/no-go table lists the rows `run` prints, in order.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHECKS } from './rollout.js';

const root = join(import.meta.dirname, '..', '..');
const read = (p: string): string => readFileSync(join(root, p), 'utf8');
const codesIn = (src: string): string[] => [...new Set([...src.matchAll(/(?:RepriseError\(|refusal\(|code: |guarded\()\s*'([A-Z][A-Z0-9_]+)'/g)].map((m) => m[1]!))].sort();

describe('docs match the code', () => {
  it('every go/no-go refusal code is in docs/approvals.md', () => {
    const codes = codesIn(read('executor/stages/preflight.ts'));
    expect(codes).toContain('COUNT_DRIFT');
    const doc = read('docs/approvals.md');
    expect(codes.filter((c) => !doc.includes(`\`${c}\``))).toEqual([]);
  });

  it('every reversal refusal code is in docs/reversal.md', () => {
    const codes = codesIn(read('executor/reverse.ts'));
    expect(codes).toContain('REVERSE_NOT_DECLARED');
    const doc = read('docs/reversal.md');
    expect(codes.filter((c) => !doc.includes(`\`${c}\``))).toEqual([]);
  });

  it('the go/no-go table of docs/approvals.md has the rows run prints, in its order', () => {
    const doc = read('docs/approvals.md');
    const section = doc.slice(doc.indexOf('## The go/no-go table'), doc.indexOf('## Walkthrough'));
    const rows = [...section.matchAll(/^\| `([a-z ]+)` \|/gm)].map((m) => m[1]);
    expect(rows).toEqual(CHECKS);
  });
});
