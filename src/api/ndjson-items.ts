import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { BatchItem } from '../contracts/batch.js';
import { PayloadTooLargeError } from '../errors.js';
import type { ResolvedModel } from '../runtime/model-repository.js';
import { DuplicateItemIdError } from '../stores/item-store.js';
import type { ItemIssues } from './batch-submission.js';
import { jsonDepthExceeds } from './json-depth.js';

/** Items handed to the store per append: one short SQLite transaction each. */
const APPEND_EVERY = 500;

export interface NdjsonItemsOptions {
  model: ResolvedModel;
  maxBytes: number;
  maxItems: number;
  /** Collects bad lines (path `line.<n>...`, n from 1); once one is found, nothing more is appended. */
  issues: ItemIssues;
  /** Stores items `from`, `from + 1`, ... (the staged batch). */
  append(items: BatchItem[], from: number): void;
}

/**
 * Reads an NDJSON body (one `{ id?, inputs }` per line) and hands valid items to the store in chunks as they
 * arrive, so the body is never held whole: memory stays at one chunk whatever the batch size. Over `maxBytes`
 * or `maxItems` it stops at once with 413. Returns the item count and the sha256 of the body's bytes.
 */
export async function readNdjsonItems(body: Readable, options: NdjsonItemsOptions): Promise<{ total: number; bodyHash: string }> {
  const { model, issues, maxBytes, maxItems } = options;
  const hash = createHash('sha256');
  const decoder = new StringDecoder('utf8');
  let bytes = 0;
  let line = 0;
  let total = 0;
  let carry = '';
  let pending: BatchItem[] = [];
  /** The line of each stored item, so a duplicate id found by the store is reported by its line. */
  const lineOf: number[] = [];
  const flush = () => {
    if (pending.length > 0 && issues.bad === 0) {
      try {
        options.append(pending, total - pending.length);
      } catch (err) {
        if (!(err instanceof DuplicateItemIdError)) throw err;
        issues.add(['line', lineOf[err.index]!, 'id'], [{ path: [], message: `duplicate item id '${err.itemId}'` }]);
      }
    }
    pending = [];
  };
  const handle = (raw: string) => {
    line++;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text.trim() === '') return;
    if (++total > maxItems) throw new PayloadTooLargeError(`a batch holds at most ${maxItems} items (MAX_BATCH_ITEMS); line ${line} is item ${total}`);
    if (jsonDepthExceeds(text)) return issues.add(['line', line], [{ path: [], message: 'JSON nested too deeply' }]);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return issues.add(['line', line], [{ path: [], message: 'not valid JSON' }]);
    }
    const parsed = BatchItem.safeParse(value);
    if (!parsed.success) {
      const details = parsed.error.issues.map((i) => ({ path: i.path.filter((p): p is string | number => typeof p !== 'symbol'), message: i.message }));
      return issues.add(['line', line], details);
    }
    const before = issues.bad;
    issues.check(model, parsed.data, ['line', line]);
    if (issues.bad === before) {
      pending.push(parsed.data);
      lineOf[total - 1] = line;
    }
    if (pending.length >= APPEND_EVERY) flush();
  };
  for await (const chunk of body as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > maxBytes) throw new PayloadTooLargeError(`request body exceeds ${maxBytes} bytes (MAX_BODY_BYTES)`);
    hash.update(chunk);
    const text = carry + decoder.write(chunk);
    const lines = text.split('\n');
    carry = lines.pop()!;
    for (const l of lines) handle(l);
  }
  handle(carry + decoder.end());
  flush();
  return { total, bodyHash: hash.digest('hex') };
}
