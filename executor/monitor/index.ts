/**
 * Watching and stopping a run: Prometheus metrics and their endpoint, the progress display and
 * `--json` events, the rolling rate, stall detection and its alert, the error budget, and the
 * stage monitor that ties them to a running stage.
 */
export { RunMetrics, METRIC_NAMES, type MetricName, type MetricStage, type MetricPolicy, type MetricEffectStatus, type RunMetricsOptions, type RunMetricsSnapshot } from './metrics.js';
export { startMetricsServer, type MetricsServer, type MetricsServerOptions } from './server.js';
export { RateEstimator, etaSeconds, type RateEstimatorOptions } from './rate.js';
export {
  createProgressDisplay,
  formatProgressLine,
  progressMode,
  colorAllowed,
  type ProgressDisplay,
  type ProgressDisplayOptions,
  type ProgressMode,
  type ProgressSnapshot,
  type ProgressStatus,
  type ProgressStream,
  type FormatOptions,
} from './progress.js';
export { createEventWriter, RUN_EVENT_TYPES, type EventWriter, type EventWriterOptions, type RunEvent, type RunEventType } from './events.js';
export type { OtherEvent, StartEvent, ChunkEvent, ThrottledEvent, ResumedEvent, StalledEvent, PausedEvent, AbortedEvent, ErrorEvent, FinishedEvent } from './events.js';
export { StallWatch, type StallInfo, type StallWatchOptions } from './stall.js';
export { sendAlert, stallAlertBody, type SendAlertOptions, type SendAlertResult, type StallAlertBody, type StallAlertInput } from './alert.js';
export { ErrorBudget, FailureSampler, messageOf, type ErrorBudgetOptions, type ErrorBudgetTrip, type FailureInput, type FailureSamplerOptions } from './error-budget.js';
export { createStageMonitor, mergeErrors, runMetricsFor, stageTotal, STALL_WATCH_ACTOR, type StageMonitorHandle, type StageMonitorOptions } from './stage-monitor.js';
