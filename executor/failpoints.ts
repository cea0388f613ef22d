/**
 * Failpoints for fault-injection tests: `REPRISE_FAILPOINTS="after-effect=120,in-commit=3"` kills
 * this process with SIGKILL the 120th time an effect has been applied (before its claim is
 * confirmed and before its chunk commits), or the 3rd time a commit transaction is about to
 * COMMIT. Unset (always, in production), a failpoint is one map lookup.
 *
 * Points: `after-effect`, `before-commit`, `in-commit`, `after-commit`.
 * @internal
 */
const armed = new Map<string, number>();
for (const part of (process.env.REPRISE_FAILPOINTS ?? '').split(',')) {
  const [name, n] = part.split('=');
  if (name && n && Number(n) > 0) armed.set(name.trim(), Number(n));
}

export function failpoint(name: 'after-effect' | 'before-commit' | 'in-commit' | 'after-commit'): void {
  const left = armed.get(name);
  if (left === undefined) return;
  if (left <= 1) {
    process.kill(process.pid, 'SIGKILL');
  }
  armed.set(name, left - 1);
}
