/**
 * How the CLI talks: human text on a TTY, or with --json one JSON object per line on stdout
 * (and nothing else there). Errors go to stderr as `error[CODE]: what — hint`.
 */
import { formatProblem, problemToJson, RepriseError, type Diagnostic } from '../compiler/errors.js';

export interface Output {
  readonly json: boolean;
  readonly color: boolean;
  /** A line for humans (suppressed in --json mode). */
  info(line: string): void;
  /** A machine-readable record (printed only in --json mode). */
  record(obj: Record<string, unknown>): void;
  /** Text in human mode, the object in JSON mode. */
  result(text: string, obj: Record<string, unknown>): void;
  warn(line: string): void;
  problems(list: Diagnostic[]): void;
  error(err: RepriseError): void;
}

export interface OutputStreams {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export function createOutput(json: boolean, streams: OutputStreams = { stdout: process.stdout, stderr: process.stderr }): Output {
  const color = !json && !process.env.NO_COLOR && Boolean(streams.stderr.isTTY);
  const red = (s: string): string => (color ? `\u001b[31m${s}\u001b[0m` : s);
  const yellow = (s: string): string => (color ? `\u001b[33m${s}\u001b[0m` : s);
  const line = (stream: NodeJS.WritableStream, s: string): void => { stream.write(`${s}\n`); };
  return {
    json,
    color,
    info: (s) => { if (!json) line(streams.stdout, s); },
    record: (o) => { if (json) line(streams.stdout, JSON.stringify(o)); },
    result: (s, o) => { if (json) line(streams.stdout, JSON.stringify(o)); else line(streams.stdout, s); },
    warn: (s) => { if (json) line(streams.stderr, JSON.stringify({ level: 'warning', message: s })); else line(streams.stderr, yellow(`warning: ${s}`)); },
    problems: (list) => {
      for (const p of list) {
        if (json) line(streams.stdout, JSON.stringify(problemToJson(p)));
        else {
          const [head, ...rest] = formatProblem(p).split('\n');
          line(streams.stderr, [red(head ?? ''), ...rest].join('\n'));
        }
      }
    },
    error: (err) => {
      if (json) line(streams.stdout, JSON.stringify(err.toJSON()));
      const [head, ...rest] = err.format().split('\n');
      line(streams.stderr, [red(head ?? ''), ...rest].join('\n'));
    },
  };
}
