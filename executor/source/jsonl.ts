/**
 * A JSONL dump (dead letters, an archive export) as an item source: one JSON object per line,
 * identified by `source.key`, optionally confined to a window by `source.timestamp`. Chunks are
 * byte ranges of the file, so a chunk is re-read exactly, in file order, after any restart; the
 * file itself is pinned by its sha256 in the manifest.
 */
import { createReadStream } from 'node:fs';
import type { JsonlSource as JsonlSpec } from '../../schema/manifest.types.js';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import type { ChunkBounds } from '../store/store.js';
import { Reservoir, seededRandom, type CanarySpec, type Item, type ItemSource } from './types.js';

interface Line {
  offset: number;
  end: number;
  text: string;
}

/** Lines of a file with their byte offsets, from `start` (inclusive) to `end` (exclusive). */
async function* readLines(path: string, start = 0, end?: number): AsyncGenerator<Line> {
  const stream = createReadStream(path, { start, end: end === undefined ? undefined : Math.max(start, end - 1) });
  let pending: Buffer = Buffer.alloc(0);
  let offset = start;
  if (end !== undefined && end <= start) return;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let nl: number;
    while ((nl = buf.indexOf(0x0a)) !== -1) {
      const raw = buf.subarray(0, nl);
      yield { offset, end: offset + nl + 1, text: raw.toString('utf8').replace(/\r$/, '') };
      offset += nl + 1;
      buf = buf.subarray(nl + 1);
    }
    pending = Buffer.from(buf);
  }
  if (pending.length) yield { offset, end: offset + pending.length, text: pending.toString('utf8').replace(/\r$/, '') };
}

export class JsonlItemSource implements ItemSource {
  private readonly windowStart: number | undefined;
  private readonly windowEnd: number | undefined;
  /** Events outside the window seen by the last count. */
  outsideWindow = 0;

  constructor(private readonly path: string, private readonly spec: JsonlSpec) {
    this.windowStart = spec.window ? Date.parse(spec.window.start) : undefined;
    this.windowEnd = spec.window ? Date.parse(spec.window.end) : undefined;
  }

  private bad(lineNo: number | undefined, what: string): RepriseError {
    return new RepriseError('SOURCE_INVALID_EVENT', `${this.spec.jsonl}${lineNo ? `:${lineNo}` : ''}: ${what}`, {
      exit: ExitCode.refused,
      hint: 'every line must be a JSON object with the key field (and the timestamp field when a window is set); fix the dump and recompile',
    });
  }

  /** Parses a line; undefined for a blank line or an event outside the window. */
  private parse(line: Line, lineNo?: number): Item | undefined | 'outside' {
    if (!line.text.trim()) return undefined;
    let event: unknown;
    try {
      event = JSON.parse(line.text);
    } catch (e) {
      throw this.bad(lineNo, `not JSON (${(e as Error).message})`);
    }
    if (event === null || typeof event !== 'object' || Array.isArray(event)) throw this.bad(lineNo, 'not a JSON object');
    const row = event as Record<string, unknown>;
    const key = row[this.spec.key];
    if (key === undefined || key === null || (typeof key !== 'string' && typeof key !== 'number')) throw this.bad(lineNo, `no string or number \`${this.spec.key}\` field`);
    if (this.spec.window && this.spec.timestamp) {
      const t = Date.parse(String(row[this.spec.timestamp] ?? ''));
      if (Number.isNaN(t)) throw this.bad(lineNo, `\`${this.spec.timestamp}\` is not a timestamp`);
      if (t < this.windowStart! || t >= this.windowEnd!) return 'outside';
    }
    return { key: String(key), row };
  }

  async count(): Promise<number> {
    const seen = new Map<string, number>();
    let n = 0;
    let outside = 0;
    let lineNo = 0;
    for await (const line of readLines(this.path)) {
      lineNo++;
      const item = this.parse(line, lineNo);
      if (item === 'outside') { outside++; continue; }
      if (!item) continue;
      const first = seen.get(item.key);
      if (first !== undefined) {
        throw new RepriseError('SOURCE_DUPLICATE_KEY', `${this.spec.jsonl}:${lineNo}: key ${JSON.stringify(item.key)} already appears on line ${first}`, {
          exit: ExitCode.refused,
          hint: 'each event is replayed once: remove duplicate events from the dump (e.g. jq -c unique_by(.key)) and recompile',
        });
      }
      seen.set(item.key, lineNo);
      n++;
    }
    this.outsideWindow = outside;
    return n;
  }

  async plan(chunkSize: number, canary: CanarySpec | undefined, onFull: (chunks: Array<ChunkBounds & { items: number }>) => Promise<void>): Promise<{ canary: ChunkBounds[]; items: number }> {
    const canaryChunks: Array<ChunkBounds & { items: number }> = [];
    const reservoir = canary?.pick === 'sample' ? new Reservoir<number>(canary.size, seededRandom(canary.seed)) : undefined;
    let firstLeft = canary?.pick === 'first' ? canary.size : 0;
    let items = 0;
    let lo = 0;
    let inChunk = 0;
    let lastEnd = 0;
    let batch: Array<ChunkBounds & { items: number }> = [];
    const cut = async (hi: number): Promise<void> => {
      if (inChunk === 0) return;
      if (firstLeft > 0) {
        canaryChunks.push({ lo, hi, keys: null, items: inChunk });
        firstLeft -= inChunk;
      } else {
        batch.push({ lo, hi, keys: null, items: inChunk });
        if (batch.length >= 200) { await onFull(batch); batch = []; }
      }
      lo = hi;
      inChunk = 0;
    };
    for await (const line of readLines(this.path)) {
      lastEnd = line.end;
      const item = this.parse(line);
      if (!item || item === 'outside') continue;
      items++;
      inChunk++;
      reservoir?.offer(line.offset);
      const limit = firstLeft > 0 ? Math.min(firstLeft, chunkSize) : chunkSize;
      if (inChunk >= limit) await cut(line.end);
    }
    await cut(lastEnd);
    if (batch.length) await onFull(batch);
    if (reservoir) {
      const offsets = reservoir.sample.sort((a, b) => a - b);
      for (let i = 0; i < offsets.length; i += chunkSize) { const keys = offsets.slice(i, i + chunkSize); canaryChunks.push({ lo: null, hi: null, keys, items: keys.length }); }
    }
    return { canary: canaryChunks, items };
  }

  async fetch(chunk: ChunkBounds): Promise<Item[]> {
    const out: Item[] = [];
    if (chunk.keys) {
      for (const offset of chunk.keys as number[]) {
        for await (const line of readLines(this.path, offset)) {
          const item = this.parse(line);
          if (item && item !== 'outside') out.push(item);
          break;
        }
      }
      return out;
    }
    for await (const line of readLines(this.path, Number(chunk.lo ?? 0), chunk.hi === null ? undefined : Number(chunk.hi))) {
      const item = this.parse(line);
      if (item && item !== 'outside') out.push(item);
    }
    return out;
  }

  async *pages(pageSize: number): AsyncGenerator<Item[]> {
    let page: Item[] = [];
    for await (const line of readLines(this.path)) {
      const item = this.parse(line);
      if (!item || item === 'outside') continue;
      page.push(item);
      if (page.length >= pageSize) { yield page; page = []; }
    }
    if (page.length) yield page;
  }
}
