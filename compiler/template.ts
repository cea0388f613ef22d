/**
 * `{field}` templates over an effect's arguments (dedupe keys, URLs, reverse fields).
 * `{{` and `}}` stand for literal braces. A placeholder names an argument (or a dotted path in it).
 */

export type TemplatePart = { text: string } | { field: string };

export interface Template {
  source: string;
  parts: TemplatePart[];
  fields: string[];
}

export class TemplateSyntaxError extends Error {
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}

const FIELD = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

export function parseTemplate(source: string): Template {
  const parts: TemplatePart[] = [];
  const fields: string[] = [];
  let text = '';
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (c === '{' && source[i + 1] === '{') { text += '{'; i += 2; continue; }
    if (c === '}' && source[i + 1] === '}') { text += '}'; i += 2; continue; }
    if (c === '}') throw new TemplateSyntaxError(`unmatched \`}\` at offset ${i}`, i);
    if (c === '{') {
      const end = source.indexOf('}', i);
      if (end === -1) throw new TemplateSyntaxError(`unclosed \`{\` at offset ${i}`, i);
      const field = source.slice(i + 1, end).trim();
      if (!FIELD.test(field)) throw new TemplateSyntaxError(`\`{${field}}\` is not a field name`, i);
      if (text) { parts.push({ text }); text = ''; }
      parts.push({ field });
      if (!fields.includes(field)) fields.push(field);
      i = end + 1;
      continue;
    }
    text += c;
    i++;
  }
  if (text) parts.push({ text });
  return { source, parts, fields };
}

/** Renders a template; throws when an argument is missing (a key must never silently be "undefined"). */
export function renderTemplate(t: Template, args: Record<string, unknown>): string {
  let out = '';
  for (const p of t.parts) {
    if ('text' in p) { out += p.text; continue; }
    const v = lookupPath(args, p.field);
    if (v === undefined || v === null) throw new Error(`template \`${t.source}\` needs argument \`${p.field}\``);
    out += typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  return out;
}

export function lookupPath(args: Record<string, unknown>, path: string): unknown {
  let cur: unknown = args;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}
