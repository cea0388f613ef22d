/**
 * Loads a plan's YAML keeping every node's position, so schema and semantic problems can point
 * at `file:line:col`. YAML 1.2 core schema (timestamps stay strings, `yes` is not a boolean),
 * merge keys allowed, duplicate keys rejected.
 */
import { Alias, isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair } from 'yaml';
import type { Diagnostic, SourcePosition } from './errors.js';

export type PlanPath = ReadonlyArray<string | number>;

export interface LoadedYaml {
  /** The file name errors are reported against. */
  file: string;
  text: string;
  /** Plain data (aliases and merge keys resolved); undefined when the YAML does not parse. */
  data: unknown;
  /** YAML syntax problems. */
  diagnostics: Diagnostic[];
  /** Where a field is written: its key (`which: 'key'`) or its value (default). */
  locate(path: PlanPath, which?: 'key' | 'value'): SourcePosition;
}

const MAX_ALIASES = 1000;

export function loadYaml(file: string, text: string): LoadedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, merge: true, uniqueKeys: true, prettyErrors: false, keepSourceTokens: false });
  const pos = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(Math.max(0, Math.min(offset, text.length)));
    return { file, line, col };
  };
  const diagnostics: Diagnostic[] = doc.errors.map((e) => ({
    code: e.code === 'DUPLICATE_KEY' ? 'DUPLICATE_KEY' : 'YAML_SYNTAX',
    message: firstLine(e.message),
    hint: e.code === 'DUPLICATE_KEY' ? 'each key may appear once in a mapping' : 'fix the YAML syntax at this position',
    at: pos(e.pos[0]),
  }));
  let data: unknown;
  if (diagnostics.length === 0) {
    try {
      data = doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (e) {
      diagnostics.push({
        code: 'YAML_SYNTAX',
        message: firstLine(e instanceof Error ? e.message : String(e)),
        hint: 'aliases must refer to anchors defined earlier, and expand to a reasonable size',
        at: pos(0),
      });
    }
  }
  return {
    file,
    text,
    data,
    diagnostics,
    locate(path, which = 'value') {
      return pos(offsetOf(doc, path, which));
    },
  };
}

function firstLine(s: string): string {
  const line = s.split('\n')[0] ?? s;
  return line.replace(/ at line \d+, column \d+:?$/, '');
}

/** Offset of the node at `path`, or of the deepest existing ancestor. */
function offsetOf(doc: Document, path: PlanPath, which: 'key' | 'value'): number {
  let node: unknown = doc.contents;
  let best = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    node = deref(doc, node);
    const seg = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = findPair(doc, node.items as Pair[], String(seg));
      if (!pair) return best;
      const keyStart = rangeStart(pair.key);
      if (last && which === 'key' && keyStart !== undefined) return keyStart;
      const valueStart = rangeStart(deref(doc, pair.value));
      if (valueStart === undefined) return keyStart ?? best;
      best = valueStart;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      const start = rangeStart(deref(doc, item));
      if (start === undefined) return best;
      best = start;
      node = item;
    } else {
      return best;
    }
  }
  return best;
}

function findPair(doc: Document, items: Pair[], key: string): Pair | undefined {
  for (const p of items) {
    if (!isPair(p)) continue;
    const k = isScalar(p.key) ? String(p.key.value) : String(p.key);
    if (k === key) return p;
  }
  // Fields that come from a merge key (`<<: *defaults`).
  for (const p of items) {
    if (!isPair(p) || !isScalar(p.key) || p.key.value !== '<<') continue;
    const sources = isSeq(p.value) ? p.value.items : [p.value];
    for (const s of sources) {
      const m = deref(doc, s);
      if (isMap(m)) {
        const found = findPair(doc, m.items as Pair[], key);
        if (found) return found;
      }
    }
  }
  return undefined;
}

function deref(doc: Document, node: unknown): unknown {
  let n = node;
  for (let i = 0; i < 16 && isAlias(n); i++) n = (n as Alias).resolve(doc);
  return n;
}

function rangeStart(node: unknown): number | undefined {
  const r = (node as Node | null | undefined)?.range;
  return Array.isArray(r) ? r[0] : undefined;
}
