/**
 * Stage reports: the `reprise/report@1` document, its hash, its Markdown and HTML renderings,
 * the recorders that build its time-based fields, and the dry-run preview diff.
 */
export * from './report.js';
export { renderReportMarkdown } from './markdown.js';
export { renderReportHtml, escapeHtml } from './html.js';
export { writeReportFiles, reportJsonText, type ReportPaths } from './write.js';
export { previewDiff, plainRows, rowsText, type PreviewRows, type PreviewDiffOptions } from './preview-diff.js';
export { ThroughputRecorder, ThrottleRecorder, type ThroughputRecorderOptions, type ThrottleRecorderOptions } from './throughput.js';
