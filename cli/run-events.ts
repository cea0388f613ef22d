/**
 * How a running stage shows itself on the command line: with --json, one JSON event per line on
 * stdout and nothing else there; otherwise log lines and a progress line on stderr.
 */
import type { ProgressSnapshot, RunEvent, RunEvents } from '../executor/stages/events.js';
import type { Output } from './output.js';

export function cliRunEvents(out: Output, stderr: NodeJS.WriteStream = process.stderr): RunEvents {
  let lastProgress = 0;
  return {
    event(e: RunEvent) {
      if (out.json) out.record({ ...e, at: new Date().toISOString() });
      else if (e.type !== 'chunk') out.info(describe(e));
    },
    progress(p: ProgressSnapshot) {
      if (out.json) return;
      const now = Date.now();
      if (now - lastProgress < (stderr.isTTY ? 250 : 5000)) return;
      lastProgress = now;
      const pct = p.total ? ((100 * p.done) / p.total).toFixed(1) : '0.0';
      const line = `${p.stage} ${p.done}/${p.total} (${pct}%) ${p.ratePerSecond.toFixed(0)}/s${p.etaSeconds !== null ? ` eta ${Math.ceil(p.etaSeconds)}s` : ''} errors ${p.failed}${p.throttle ? ` throttled by ${p.throttle.probe}=${p.throttle.value}` : ''} [${p.status}]`;
      stderr.write(stderr.isTTY ? `\r\u001b[2K${line}` : `${line}\n`);
    },
    log(level, message, fields) {
      if (out.json) return;
      if (level === 'info' && fields?.item !== undefined) return;
      stderr.write(`${stderr.isTTY ? '\r\u001b[2K' : ''}${level === 'info' ? '' : `${level}: `}${message}\n`);
    },
  };
}

function describe(e: RunEvent): string {
  switch (e.type) {
    case 'start': return `${e.stage}: ${e.run} — ${String(e.total)} items`;
    case 'finished': return `${e.stage}: ${String(e.outcome)}${e.report ? ` — report ${String(e.report)}` : ''}`;
    case 'aborted': return `${e.stage}: stopped (${String(e.reason)}: ${String(e.detail)})`;
    default: return `${e.stage}: ${e.type}`;
  }
}
