/**
 * Locale-independent formatting shared by the report renderers and the progress line, so the
 * same report renders the same bytes on every machine.
 */

/** `48213` -> `48,213`. Non-finite values print as `–`. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '–';
  const neg = n < 0;
  const [int = '0', frac] = Math.abs(n).toString().split('.');
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${neg ? '-' : ''}${grouped}${frac ? `.${frac}` : ''}`;
}

/** A rate for humans: `0.4`, `12.5`, `183`, `1,204`. */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return '0';
  if (perSecond < 10) return perSecond.toFixed(1);
  return formatCount(Math.round(perSecond));
}

/** Elapsed time for humans: `850ms`, `12.3s`, `5m 03s`, `2h 04m`, `3d 02h`. */
export function formatElapsed(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.floor(s)}s`;
  const total = Math.floor(s);
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (total < 3600) return `${Math.floor(total / 60)}m ${pad(total % 60)}s`;
  if (total < 86400) return `${Math.floor(total / 3600)}h ${pad(Math.floor((total % 3600) / 60))}m`;
  return `${Math.floor(total / 86400)}d ${pad(Math.floor((total % 86400) / 3600))}h`;
}

/** `0.2471` -> `24.7%`. */
export function formatPercent(ratio: number): string {
  if (!Number.isFinite(ratio)) return '–';
  return `${(ratio * 100).toFixed(ratio >= 1 || ratio === 0 ? 0 : 1)}%`;
}

/** Shortens text to `max` characters (marking the cut with `…`). */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}
