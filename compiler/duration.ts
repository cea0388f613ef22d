/** Durations in plans are strings: a whole number and a unit (`500ms`, `2s`, `5m`, `12h`, `90d`). */
const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const PATTERN = /^([0-9]+)(ms|s|m|h|d)$/;

export function parseDuration(text: string): number | undefined {
  const m = PATTERN.exec(text);
  if (!m) return undefined;
  const ms = Number(m[1]) * UNITS[m[2] as keyof typeof UNITS];
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** The shortest exact spelling of a duration in milliseconds (`120000` -> `2m`). */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms >= UNITS[unit] && ms % UNITS[unit] === 0) return `${ms / UNITS[unit]}${unit}`;
  }
  return `${ms}ms`;
}
