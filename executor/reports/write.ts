/**
 * Writes a stage report's three files — `<run>.<stage>.report.json`, `.md` and `.html` — each
 * atomically (temporary file in the same directory, fsync, rename), so a crash never leaves a
 * half-written report for a reviewer or an approval to bind.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import type { Report } from '../../schema/report.types.js';
import { renderReportHtml } from './html.js';
import { renderReportMarkdown } from './markdown.js';
import { reportFileBase, reportHash } from './report.js';

/** Paths of the files `writeReportFiles` wrote. */
export interface ReportPaths {
  json: string;
  md: string;
  html: string;
}

/** The JSON file's text: the report as indented JSON (the hash covers content, not layout). */
export function reportJsonText(report: Report): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/**
 * Writes the report's JSON, Markdown and HTML files into `dir` (created if missing) and returns
 * their paths. Refuses a report whose `hash` does not match its content (finalize it first).
 */
export async function writeReportFiles(dir: string, report: Report): Promise<ReportPaths> {
  if (reportHash(report) !== report.hash) {
    throw new RepriseError('REPORT_HASH_MISMATCH', `report for ${report.runId} ${report.stage} does not match its hash`, {
      exit: ExitCode.internal,
      hint: 'seal the report with finalizeReport after the last change; this is a bug in reprise',
    });
  }
  await mkdir(dir, { recursive: true });
  const base = join(dir, reportFileBase(report.runId, report.stage));
  const paths: ReportPaths = { json: `${base}.json`, md: `${base}.md`, html: `${base}.html` };
  await writeFileAtomic(paths.json, reportJsonText(report));
  await writeFileAtomic(paths.md, renderReportMarkdown(report));
  await writeFileAtomic(paths.html, renderReportHtml(report));
  return paths;
}

/** Writes `text` to `path` through a temporary sibling, fsync and rename. @internal */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
