/**
 * The stall alert: a JSON POST to the plan's `abort.alert.webhook`, retried a few times, that
 * never throws — an unreachable alert target must not take the run down with it, so the result
 * says whether it was delivered and the executor logs it either way.
 *
 * Webhook URLs often carry a secret (Slack, PagerDuty tokens), so no message here repeats it.
 */

/** The body of a stall alert. */
export interface StallAlertBody {
  type: 'reprise.stall';
  run: string;
  stage: string;
  plan: string;
  revision?: number;
  /** ISO 8601 UTC of the last committed progress. */
  lastProgressAt: string;
  stalledForSeconds: number;
  /** The plan's onStall action, already taken when the alert is sent. */
  onStall: 'alert' | 'pause' | 'abort';
  howToAbort: string;
  howToPause: string;
  /** The run's status after the onStall action (running, paused, aborting). */
  status: string;
  /** One line for chat webhooks that display `text` (Slack, Mattermost, Teams connectors). */
  text: string;
}

export interface StallAlertInput {
  run: string;
  stage: string;
  plan: string;
  revision?: number;
  /** Epoch ms or ISO string. */
  lastProgressAt: number | string;
  stalledForSeconds: number;
  onStall: 'alert' | 'pause' | 'abort';
  status: string;
}

/** Builds the alert body, with the commands to abort and to pause the run. */
export function stallAlertBody(i: StallAlertInput): StallAlertBody {
  const last = typeof i.lastProgressAt === 'number' ? new Date(i.lastProgressAt).toISOString() : i.lastProgressAt;
  const stalledForSeconds = Math.round(i.stalledForSeconds);
  const action = i.onStall === 'alert' ? 'still running' : i.onStall === 'pause' ? 'paused' : 'aborting';
  const body: Omit<StallAlertBody, 'text'> = {
    type: 'reprise.stall',
    run: i.run,
    stage: i.stage,
    plan: i.plan,
    ...(i.revision === undefined ? {} : { revision: i.revision }),
    lastProgressAt: last,
    stalledForSeconds,
    onStall: i.onStall,
    howToAbort: `reprise abort ${i.run}`,
    howToPause: `reprise pause ${i.run}`,
    status: i.status,
  };
  return {
    ...body,
    text: `reprise: run ${i.run} (${i.stage}) has made no progress for ${stalledForSeconds}s (last at ${last}); onStall=${i.onStall}, ${action}. Abort: \`${body.howToAbort}\` · pause: \`${body.howToPause}\``,
  };
}

export interface SendAlertOptions {
  /** Per-attempt timeout. @defaultValue 5_000 */
  timeoutMs?: number;
  /** Attempts in all. @defaultValue 3 */
  attempts?: number;
  /** Wait before the second attempt; doubles each time. @defaultValue 250 */
  backoffMs?: number;
}

export type SendAlertResult =
  | { ok: true; status: number; attempts: number }
  | { ok: false; error: string; status: number | null; attempts: number };

/**
 * POSTs `body` as JSON to `url`. Retries on network errors, timeouts, 408, 429 and 5xx; any
 * other 4xx answer is final (the target refuses this alert, and will again). Never throws, and
 * no error message contains the URL.
 */
export async function sendAlert(url: string, body: unknown, opts: SendAlertOptions = {}): Promise<SendAlertResult> {
  const attempts = Math.max(1, opts.attempts ?? 3);
  const timeoutMs = opts.timeoutMs ?? 5_000;
  let wait = opts.backoffMs ?? 250;
  let payload: string;
  try {
    payload = JSON.stringify(body);
  } catch (e) {
    return { ok: false, error: `alert body is not JSON: ${(e as Error).message}`, status: null, attempts: 0 };
  }
  let last: { error: string; status: number | null } = { error: 'not sent', status: null };
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'reprise-alert' },
        body: payload,
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'error',
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return { ok: true, status: res.status, attempts: attempt };
      last = { error: `webhook answered HTTP ${res.status}`, status: res.status };
      const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
      if (!retryable) return { ok: false, ...last, attempts: attempt };
    } catch (e) {
      last = { error: describe(e, timeoutMs).split(url).join('<webhook>'), status: null };
    }
    if (attempt < attempts) {
      await new Promise((r) => setTimeout(r, wait));
      wait *= 2;
    }
  }
  return { ok: false, ...last, attempts };
}

function describe(e: unknown, timeoutMs: number): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return `webhook did not answer within ${timeoutMs}ms`;
  const code = err?.cause?.code;
  if (code) return `webhook unreachable (${code})`;
  if (err instanceof TypeError && /invalid url|failed to parse url/i.test(`${err.message} ${err.cause?.message ?? ''}`)) return 'webhook URL is not a valid URL';
  return `webhook request failed: ${err?.cause?.message ?? err?.message ?? String(e)}`;
}
