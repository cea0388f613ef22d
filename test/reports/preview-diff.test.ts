import { describe, expect, it } from 'vitest';
import { plainRows, previewDiff, rowsText } from '../../executor/reports/preview-diff.js';

describe('previewDiff', () => {
  it('shows the changed columns of a row as a unified diff', () => {
    const d = previewDiff({ order_id: 42, total_cents: 1999, tax_cents: 199 }, { order_id: 42, total_cents: 2000, tax_cents: 200 });
    expect(d).toBe(
      [
        '--- before',
        '+++ after',
        '@@ -1,5 +1,5 @@',
        ' {',
        '   "order_id": 42,',
        '-  "total_cents": 1999,',
        '-  "tax_cents": 199',
        '+  "total_cents": 2000,',
        '+  "tax_cents": 200',
        ' }',
        '',
      ].join('\n'),
    );
  });

  it('shows a new row as all additions and a deleted row as all deletions', () => {
    expect(previewDiff([], [{ a: 1 }])).toBe('--- before\n+++ after\n@@ -0,0 +1,3 @@\n+{\n+  "a": 1\n+}\n');
    expect(previewDiff(null, [{ a: 1 }])).toBe(previewDiff([], [{ a: 1 }]));
    expect(previewDiff([{ a: 1 }], [])).toBe('--- before\n+++ after\n@@ -1,3 +0,0 @@\n-{\n-  "a": 1\n-}\n');
  });

  it('is empty when nothing would change', () => {
    expect(previewDiff([{ a: 1 }], { a: 1 })).toBe('');
    expect(previewDiff(null, [])).toBe('');
  });

  it('handles several rows and values JSON cannot hold', () => {
    const before = [{ id: 1n as unknown, b: Buffer.from([0xde, 0xad]), at: new Date(0) }, { id: 2, v: 'x' }];
    const after = [{ id: 1n as unknown, b: Buffer.from([0xde, 0xad]), at: new Date(0) }, { id: 2, v: 'y' }];
    expect(rowsText(before)).toContain('"id": "1"');
    expect(rowsText(before)).toContain('"b": "\\\\xdead"');
    expect(rowsText(before)).toContain('"at": "1970-01-01T00:00:00.000Z"');
    const d = previewDiff(before, after, { context: 0 });
    expect(d.split('\n').filter((l) => /^[-+] /.test(l))).toEqual(['-  "v": "x"', '+  "v": "y"']);
    expect(plainRows(before)?.[0]).toEqual({ id: '1', b: '\\xdead', at: '1970-01-01T00:00:00.000Z' });
    expect(plainRows(null)).toBeNull();
  });
});
