import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderReportHtml } from '../../executor/reports/html.js';
import { renderReportMarkdown } from '../../executor/reports/markdown.js';
import { parseReport } from '../../executor/reports/report.js';
import { writeReportFiles } from '../../executor/reports/write.js';
import { canaryReport, HOSTILE_KEY, HOSTILE_MESSAGE } from './fixtures.js';

describe('Markdown report', () => {
  const md = renderReportMarkdown(canaryReport());

  it('has every section a reviewer reads', () => {
    for (const heading of ['# reprise report: orders-tax-recompute r1 · canary', '## Items', '## Count guard', '## Side effects', '## Errors', '## Throttle', '## Throughput', '## Canary', '## Validations', '## Target fingerprints', '## Preview of sql effects']) {
      expect(md).toContain(heading);
    }
    expect(md).toContain('Counted **48,213** items');
    expect(md).toContain('✅ within bounds');
    expect(md).toContain('Throttled for **9.0s**');
    expect(md).toContain('| `publish_invoice_corrected` | redis-stream | **dedupe** | at-least-once | dedupe | 80 | 0 | 17 | 0 | 0 | 0 | 0 |');
    expect(md).toContain('system_identifier `7301234567890123456`');
    expect(md).toContain('❌ fail');
    expect(md).toMatch(/```diff\n--- before\n\+\+\+ after\n@@ [^\n]+\n {\n   "order_id": 42,\n-  "total_cents": 1999,/);
    expect(md).toContain(canaryReport().hash);
  });

  it('keeps hostile keys and messages inside their table cells, escaped', () => {
    // Outside code spans and fences (where CommonMark shows markup literally) no markup survives.
    const prose = md.replace(/^(`{3,})[a-z]*\n[\s\S]*?^\1$/gm, '').replace(/(`+)[\s\S]*?\1/g, '');
    const errorRows = md.split('\n').filter((l) => l.startsWith('| `') && l.includes('alert'));
    expect(errorRows.length).toBeGreaterThan(0);
    for (const row of md.split('\n').filter((l) => l.startsWith('|'))) {
      // A row's cell count is fixed by its table: no unescaped pipe from data may add one.
      const cells = row.replace(/\\\|/g, '').split('|').length;
      expect(cells, row).toBeLessThanOrEqual(14);
    }
    expect(prose).not.toMatch(/(^|[^\\])<(script|img)/);
    expect(prose).not.toMatch(/[^\\]\[l\]\(https/);
    expect(md).not.toContain(HOSTILE_MESSAGE); // the newline is folded and markup escaped
    expect(md).toContain('\\<img src="https://evil.example/pixel.gif" onerror="alert(1)"\\> \\& "quotes"');
  });

  it('says so when nothing failed, nothing was throttled and the stage was aborted', () => {
    const quiet = renderReportMarkdown(
      canaryReport({
        outcome: 'aborted',
        errors: { total: 0, samples: [] },
        throttle: { throttledMs: 0, episodes: [] },
        abort: { reason: 'consecutive-errors', detail: '20 items failed in a row (maxConsecutiveErrors 20)' },
        preview: [],
      }),
    );
    expect(quiet).toContain('No item failed.');
    expect(quiet).toContain('Never throttled by a protect probe.');
    expect(quiet).toContain('> **Stopped early** (consecutive-errors): 20 items failed in a row (maxConsecutiveErrors 20)');
    expect(quiet).not.toContain('## Preview');
  });
});

describe('HTML report', () => {
  const html = renderReportHtml(canaryReport());

  it('is self-contained: no script, no external URL, a CSP that fetches nothing', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain(`content="default-src 'none'`);
    // Data never contains a raw `<`, so every tag found is one the renderer wrote.
    const tags = [...html.matchAll(/<([a-zA-Z][\w:-]*)([^>]*)>/g)];
    expect(new Set(tags.map((t) => t[1]?.toLowerCase())).has('link')).toBe(false);
    for (const [tag, , attrs] of tags) expect(attrs, tag).not.toMatch(/\s(?:src|href|xlink:href|action|srcset|poster|background)\s*=/i);
    expect(html).not.toMatch(/url\(|@import|<iframe|<object|<embed/i);
    // The only absolute URL allowed is the SVG namespace.
    const absolute = [...html.matchAll(/https?:\/\/[^\s"'<>&]+/g)].map((m) => m[0]).filter((u) => u !== 'http://www.w3.org/2000/svg');
    expect(absolute.every((u) => u.startsWith('https://evil.example'))).toBe(true); // only escaped data text
  });

  it('escapes every data value', () => {
    expect(html).not.toContain('<img');
    expect(html).not.toContain('</pre><script>');
    expect(html).not.toContain(HOSTILE_KEY);
    expect(html).toContain('&#60;script&#62;alert(&#34;k&#34;)&#60;/script&#62;');
    expect(html).toContain('onerror=&#34;alert(1)&#34;');
  });

  it('draws the throughput chart, the effect breakdown and the tables', () => {
    expect(html).toMatch(/<svg id="throughput-chart"[^>]*>[\s\S]*<polyline id="throughput-line" points="[\d., ]+"/);
    expect((html.match(/class="bar"/g) ?? []).length).toBe(66);
    expect(html).toContain('class="throttle"');
    expect(html).toMatch(/<svg id="effect-breakdown"/);
    expect((html.match(/class="seg" data-status="applied"/g) ?? []).length).toBe(2);
    expect(html).toContain('data-status="skipped-dup"');
    expect(html).toContain('<table id="effects">');
    expect(html).toContain('<span class="add">+  &#34;total_cents&#34;: 2000,</span>');
    expect(html).toContain('<span class="file">+++ after</span>');
  });

  it('renders an empty stage without dividing by zero', () => {
    const empty = renderReportHtml(
      canaryReport({
        durationMs: 0,
        throughput: [],
        effects: [],
        counts: { selected: 0, processed: 0, succeeded: 0, failed: 0, skippedOutsideWindow: 0, remaining: 0 },
        errors: { total: 0, samples: [] },
        throttle: { throttledMs: 0, episodes: [] },
      }),
    );
    expect(empty).toContain('no items were processed');
    expect(empty).not.toMatch(/NaN|Infinity/);
  });
});

describe('writeReportFiles', () => {
  const dir = mkdtempSync(join(tmpdir(), 'reprise-report-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes json, md and html atomically and the JSON reads back with its hash', async () => {
    const r = canaryReport();
    const paths = await writeReportFiles(join(dir, 'reports'), r);
    expect(paths).toEqual({
      json: join(dir, 'reports', 'orders-tax-recompute.r1.0123abcd.canary.report.json'),
      md: join(dir, 'reports', 'orders-tax-recompute.r1.0123abcd.canary.report.md'),
      html: join(dir, 'reports', 'orders-tax-recompute.r1.0123abcd.canary.report.html'),
    });
    expect(parseReport(readFileSync(paths.json, 'utf8')).hash).toBe(r.hash);
    expect(readFileSync(paths.md, 'utf8')).toBe(renderReportMarkdown(r));
    expect(readFileSync(paths.html, 'utf8')).toBe(renderReportHtml(r));
    // Rewriting replaces the files; no temporary file is left behind.
    await writeReportFiles(join(dir, 'reports'), r);
    expect(readdirSync(join(dir, 'reports')).sort()).toEqual(['json', 'md', 'html'].map((e) => `orders-tax-recompute.r1.0123abcd.canary.report.${e}`).sort());
  });

  it('refuses a report whose hash does not match its content', async () => {
    const r = { ...canaryReport(), workers: 9 };
    await expect(writeReportFiles(dir, r)).rejects.toMatchObject({ code: 'REPORT_HASH_MISMATCH' });
  });
});
