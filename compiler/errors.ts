/**
 * reprise's one error type. Every failure a user can cause or fix carries a stable `code`, a
 * message saying what happened and a `hint` saying what to do; the CLI prints it as
 * `error[CODE]: message — hint` (plus `at file:line:col` for plan errors) and maps `exit` to the
 * process exit code. Library code never calls process.exit.
 */

/** Process exit codes (design section 7). */
export const ExitCode = {
  ok: 0,
  internal: 1,
  invalidInput: 2,
  refused: 3,
  stopped: 4,
  canaryFailed: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A place in a plan (or any text file) an error points at. Lines and columns are 1-based. */
export interface SourcePosition {
  file: string;
  line: number;
  col: number;
}

export interface RepriseErrorOptions {
  hint?: string;
  /** Exit code the CLI uses. @defaultValue ExitCode.invalidInput */
  exit?: ExitCode;
  at?: SourcePosition;
  cause?: unknown;
  /** Structured details for --json output and reports. */
  details?: Record<string, unknown>;
}

export class RepriseError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly exit: ExitCode;
  readonly at: SourcePosition | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, opts: RepriseErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RepriseError';
    this.code = code;
    this.hint = opts.hint;
    this.exit = opts.exit ?? ExitCode.invalidInput;
    this.at = opts.at;
    this.details = opts.details;
  }

  /** `error[CODE]: message — hint` (one line) and, for plan errors, `  at file:line:col`. */
  format(): string {
    return formatProblem({ code: this.code, message: this.message, hint: this.hint, at: this.at });
  }

  toJSON(): Record<string, unknown> {
    return problemToJson({ code: this.code, message: this.message, hint: this.hint, at: this.at, details: this.details });
  }
}

/** A plan problem found while validating; several are collected before any is reported. */
export interface Diagnostic {
  code: string;
  message: string;
  hint?: string | undefined;
  at?: SourcePosition | undefined;
  /** JSON path of the offending field inside the plan. */
  path?: ReadonlyArray<string | number> | undefined;
  details?: Record<string, unknown> | undefined;
}

export function formatProblem(p: Diagnostic): string {
  const head = `error[${p.code}]: ${p.message}${p.hint ? ` — ${p.hint}` : ''}`;
  return p.at ? `${head}\n  at ${p.at.file}:${p.at.line}:${p.at.col}` : head;
}

export function problemToJson(p: Diagnostic): Record<string, unknown> {
  const out: Record<string, unknown> = { level: 'error', code: p.code, message: p.message };
  if (p.hint) out.hint = p.hint;
  if (p.at) Object.assign(out, { file: p.at.file, line: p.at.line, col: p.at.col });
  if (p.path) out.path = p.path.join('.');
  if (p.details) out.details = p.details;
  return out;
}

/** Orders diagnostics by their position in the file (those without one first). */
export function byPosition(a: Diagnostic, b: Diagnostic): number {
  return (a.at?.line ?? 0) - (b.at?.line ?? 0) || (a.at?.col ?? 0) - (b.at?.col ?? 0);
}

/** Thrown when a plan has one or more problems; carries all of them. */
export class PlanInvalidError extends RepriseError {
  readonly diagnostics: Diagnostic[];
  constructor(file: string, diagnostics: Diagnostic[], code = 'PLAN_INVALID') {
    const n = diagnostics.length;
    super(code, `${file}: ${n} problem${n === 1 ? '' : 's'}`, { exit: ExitCode.invalidInput });
    this.diagnostics = diagnostics;
  }
  override format(): string {
    return this.diagnostics.map(formatProblem).join('\n');
  }
}

/**
 * Thrown when the organisation policy file itself has problems (each at the policy file's
 * line:col). A PlanInvalidError so every command prints it the same way, with exit 2.
 */
export class PolicyInvalidError extends PlanInvalidError {
  constructor(file: string, diagnostics: Diagnostic[]) {
    super(file, diagnostics, 'POLICY_INVALID');
    this.name = 'PolicyInvalidError';
  }
}

/** Normalizes anything thrown into a RepriseError (unknown throws become internal errors). */
export function coerceError(err: unknown): RepriseError {
  if (err instanceof RepriseError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  return new RepriseError('INTERNAL', e.message, {
    exit: ExitCode.internal,
    hint: 'this is a bug in reprise; please report it with the command you ran',
    cause: e,
  });
}
