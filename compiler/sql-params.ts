/**
 * Named parameters in plan SQL. A plan writes `:name` (or `:before.column` in reverse
 * statements); reprise binds them as `$n` — values are never spliced into SQL text.
 *
 * The scanner skips string literals ('…', E'…'), quoted identifiers ("…"), dollar-quoted
 * bodies ($tag$…$tag$), comments and `::` casts, so a colon inside any of those is not a parameter.
 */
import { lookupPath } from './template.js';

export interface NamedSql {
  /** The statement as written. */
  text: string;
  /** The statement with each `:name` replaced by `$n`. */
  sql: string;
  /** Parameter names in `$n` order (each name once). */
  params: string[];
}

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;

export function parseNamedSql(text: string): NamedSql {
  const params: string[] = [];
  const sql = substituteNamed(text, (name) => {
    let idx = params.indexOf(name);
    if (idx === -1) { params.push(name); idx = params.length - 1; }
    return `$${idx + 1}`;
  });
  return { text, sql, params };
}

/**
 * Replaces every `:name` of a statement by `replace(name)`, leaving literals, quoted
 * identifiers, dollar-quoted bodies and casts untouched, and comments as `comment` returns them.
 */
export function substituteNamed(text: string, replace: (name: string) => string, comment: (text: string) => string = (c) => c): string {
  let out = '';
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '-' && next === '-') {
      const end = text.indexOf('\n', i);
      const stop = end === -1 ? n : end;
      out += comment(text.slice(i, stop));
      i = stop;
    } else if (c === '/' && next === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < n && depth > 0) {
        if (text[j] === '/' && text[j + 1] === '*') { depth++; j += 2; }
        else if (text[j] === '*' && text[j + 1] === '/') { depth--; j += 2; }
        else j++;
      }
      out += comment(text.slice(i, j));
      i = j;
    } else if (c === "'") {
      const escapes = i > 0 && /[eE]/.test(text[i - 1]!) && (i < 2 || !IDENT_PART.test(text[i - 2]!));
      let j = i + 1;
      while (j < n) {
        if (escapes && text[j] === '\\') { j += 2; continue; }
        if (text[j] === "'") {
          if (text[j + 1] === "'") { j += 2; continue; }
          break;
        }
        j++;
      }
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '"') {
      let j = i + 1;
      while (j < n) {
        if (text[j] === '"') {
          if (text[j + 1] === '"') { j += 2; continue; }
          break;
        }
        j++;
      }
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '$' && (i === 0 || !IDENT_PART.test(text[i - 1]!))) {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i));
      if (m) {
        const tag = m[0];
        const end = text.indexOf(tag, i + tag.length);
        const stop = end === -1 ? n : end + tag.length;
        out += text.slice(i, stop);
        i = stop;
      } else {
        out += c;
        i++;
      }
    } else if (c === ':' && next === ':') {
      out += '::';
      i += 2;
    } else if (c === ':' && next !== undefined && IDENT_START.test(next) && (i === 0 || text[i - 1] !== ':')) {
      let j = i + 1;
      while (j < n && (IDENT_PART.test(text[j]!) || (text[j] === '.' && j + 1 < n && IDENT_START.test(text[j + 1]!)))) j++;
      out += replace(text.slice(i + 1, j));
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The statement with each comment (line and block comments) replaced by a space; literals kept as written. */
export function stripSqlComments(text: string): string {
  return substituteNamed(text, (name) => `:${name}`, () => ' ');
}

/** Values for `$1..$n` from named arguments; a missing name is reported, never bound as null silently. */
export function bindNamed(named: NamedSql, args: Record<string, unknown>): { values: unknown[]; missing: string[] } {
  const missing: string[] = [];
  const values = named.params.map((p) => {
    const v = lookupPath(args, p);
    if (v === undefined) missing.push(p);
    return v === undefined ? null : v;
  });
  return { values, missing };
}
