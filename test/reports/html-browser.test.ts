/**
 * The HTML report as a reviewer sees it: loaded from disk in headless Chromium (Debian's
 * `chromium` package), with every network request recorded and console errors collected.
 */
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReportFiles } from '../../executor/reports/write.js';
import { canaryReport } from './fixtures.js';

const CHROMIUM = process.env.REPRISE_CHROMIUM ?? '/usr/bin/chromium';

describe('HTML report in headless Chromium', () => {
  let browser: Browser;
  // Kept when the test fails (the screenshot and the HTML are the evidence); set
  // REPRISE_KEEP_SCREENSHOTS=1 to keep it anyway.
  const dir = mkdtempSync(join(tmpdir(), 'reprise-html-'));
  let passed = false;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} not found: this test needs Chromium — install it with \`apt-get install chromium\` (or set REPRISE_CHROMIUM to its path)`);
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    if (passed && !process.env.REPRISE_KEEP_SCREENSHOTS) rmSync(dir, { recursive: true, force: true });
    else console.log(`HTML report and screenshot kept in ${dir}`);
  });

  it('renders the chart and the effect table with no console error and no outside request', async () => {
    const paths = await writeReportFiles(dir, canaryReport());
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));

    const url = pathToFileURL(paths.html).href;
    await page.goto(url, { waitUntil: 'load' });

    expect(await page.title()).toContain('orders-tax-recompute r1');
    // Throughput chart: a visible SVG with one bar per bucket and the rate line.
    const chart = page.locator('svg#throughput-chart');
    expect(await chart.isVisible()).toBe(true);
    expect((await chart.boundingBox())?.height ?? 0).toBeGreaterThan(100);
    expect(await chart.locator('rect.bar').count()).toBe(66);
    expect(await chart.locator('polyline#throughput-line').getAttribute('points')).toMatch(/^[\d.]+,[\d.]+( [\d.]+,[\d.]+)+$/);
    // Effect breakdown and table.
    expect(await page.locator('svg#effect-breakdown rect.seg').count()).toBe(5);
    const rows = page.locator('table#effects tbody tr');
    expect(await rows.count()).toBe(3);
    expect(await rows.nth(2).locator('td').allInnerTexts()).toEqual(['publish_invoice_corrected', 'redis-stream', 'dedupe', 'at-least-once', 'dedupe', '80', '0', '17', '0', '0', '0', '0']);
    // Hostile data shows as text, not markup.
    expect(await page.locator('script, img, iframe, link[rel]').count()).toBe(0);
    expect(await page.locator('#errors').innerText()).toContain('<script>alert("k")</script>');
    expect(await page.locator('#preview .add').first().innerText()).toBe('+  "total_cents": 2000,');

    const shot = join(dir, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);

    expect(problems).toEqual([]);
    expect(requests).toEqual([url]);
    await page.close();
    passed = true;
  });
});
