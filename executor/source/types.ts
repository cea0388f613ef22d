/**
 * Where items come from: a SQL selection over a window (keyset-paginated by its key) or a JSONL
 * dump. Sources never hold more than one page in memory.
 */
import type { ChunkBounds } from '../store/store.js';

export interface Item {
  /** The key as the ledger and dedupe records it (text; a JSON array for composite keys). */
  key: string;
  /** The value given to the handler: the selected row, or the parsed event. */
  row: Record<string, unknown>;
}

export interface CanarySpec {
  size: number;
  pick: 'first' | 'sample';
  /** Seed of the sample (from the manifest hash). */
  seed: string;
}

export interface PlannedChunks {
  canary: ChunkBounds[];
  full: Array<ChunkBounds & { items: number }>;
  /** Items enumerated while planning. */
  items: number;
}

export interface ItemSource {
  /** Counts the items in the window (a READ ONLY snapshot for SQL). */
  count(): Promise<number>;
  /**
   * Enumerates every key once (short transactions, one page at a time) and cuts the run into
   * chunks of `chunkSize`; the canary set, when asked for, becomes chunks of its own.
   * `onFull` receives full-stage chunks as they are cut, so memory stays flat.
   */
  plan(chunkSize: number, canary: CanarySpec | undefined, onFull: (chunks: Array<ChunkBounds & { items: number }>) => Promise<void>): Promise<{ canary: ChunkBounds[]; items: number }>;
  /** Items of a chunk, in key order. */
  fetch(chunk: ChunkBounds): Promise<Item[]>;
  /** Every item, page by page, in key order (dry-run). */
  pages(pageSize: number): AsyncGenerator<Item[]>;
}

/** Deterministic PRNG (sfc32) seeded from a string, for canary samples that reviewers can reproduce. */
export function seededRandom(seed: string): () => number {
  let h = 1779033703 ^ seed.length;
  const next = (): number => {
    h = Math.imul(h ^ (h >>> 16), 2246822507);
    h = Math.imul(h ^ (h >>> 13), 3266489909);
    return (h ^= h >>> 16) >>> 0;
  };
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 3432918353);
  let a = next(), b = next(), c = next(), d = next();
  return () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

/** Reservoir sample (algorithm R) of a stream, keeping `size` values. */
export class Reservoir<T> {
  readonly sample: T[] = [];
  private seen = 0;
  constructor(private readonly size: number, private readonly random: () => number) {}
  offer(value: T): void {
    this.seen++;
    if (this.sample.length < this.size) { this.sample.push(value); return; }
    const j = Math.floor(this.random() * this.seen);
    if (j < this.size) this.sample[j] = value;
  }
}
