/**
 * Preloaded into a benchmarked process (`node --import ./bench/lib/report-maxrss.mjs …`): when
 * it exits, writes its own peak resident set size (kilobytes, from getrusage) to the file named
 * by REPRISE_BENCH_MAXRSS_FILE, so the measure is the child's own, not an estimate.
 */
import { writeFileSync } from 'node:fs';

const file = process.env.REPRISE_BENCH_MAXRSS_FILE;
if (file) {
  process.on('exit', (code) => {
    writeFileSync(file, JSON.stringify({ maxRssKb: process.resourceUsage().maxRSS, exitCode: code }));
  });
}
