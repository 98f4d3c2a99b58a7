import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { BatchItem } from '../contracts/batch.js';
import { PayloadTooLargeError, type ErrorDetail } from '../errors.js';
import type { ResolvedModel } from '../runtime/model-repository.js';
import { DuplicateItemIdError } from '../stores/item-store.js';
import { inputProblems, type ItemIssues } from './batch-submission.js';
import { jsonDepthExceeds } from './json-depth.js';

/** Appends handed to the store and not yet finished, at most: the store writes one while the next is parsed. */
const MAX_APPENDS_IN_FLIGHT = 2;

export interface NdjsonItemsOptions {
  model: ResolvedModel;
  maxBytes: number;
  maxItems: number;
  /** Collects bad lines (path `line.<n>...`, n from 1), in line order; once one is found, nothing more is appended. */
  issues: ItemIssues;
  /**
   * Stores items `from`, `from + 1`, ... (the staged batch), in the background; appends are finished in the order
   * they were made. Rejects with DuplicateItemIdError for an id already stored.
   */
  append(items: BatchItem[], from: number): Promise<void>;
  /** Items handed to `append` at a time (the store's ItemStore.appendSize). */
  appendEvery: number;
}

/** A line that was not stored, and why. */
interface BadLine {
  path: (string | number)[];
  details: ErrorDetail[];
}

/**
 * Reads an NDJSON body (one `{ id?, inputs }` per line) and hands valid items to the store in chunks as they
 * arrive, so the body is never held whole: memory stays at a few chunks whatever the batch size. The store writes
 * one chunk while the next lines are parsed. Over `maxBytes` or `maxItems` it stops at once with 413. Returns the
 * item count and the sha256 of the body's bytes; whether it returns or throws, no append is left running.
 */
export async function readNdjsonItems(
  body: Readable,
  options: NdjsonItemsOptions,
): Promise<{ total: number; bodyHash: string }> {
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
  /** Appends in flight, oldest first. Each records its own duplicate id as an issue once it finishes. */
  const appending: Promise<void>[] = [];
  let duplicateFound = false;
  /** Waits until at most `keep` appends are in flight; throws a store fault other than a duplicate id. */
  const settle = async (keep: number) => {
    while (appending.length > keep) await appending.shift();
  };
  const flush = async () => {
    if (pending.length > 0 && issues.bad === 0) {
      const appended = options.append(pending, total - pending.length).catch((err: unknown) => {
        if (!(err instanceof DuplicateItemIdError)) throw err;
        // Later appends were already under way; only the first duplicate is reported, as if appending had stopped.
        if (duplicateFound) return;
        duplicateFound = true;
        issues.add(['line', lineOf[err.index]!, 'id'], [{ path: [], message: `duplicate item id '${err.itemId}'` }]);
      });
      appended.catch(() => {}); // awaited by settle(); this only keeps a fault from being reported as unhandled first
      appending.push(appended);
      await settle(MAX_APPENDS_IN_FLIGHT - 1);
    }
    pending = [];
  };
  /** Parses and checks one line; a valid item joins `pending`, a bad line is returned. */
  const handle = (raw: string): BadLine | undefined => {
    line++;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text.trim() === '') return;
    if (++total > maxItems)
      throw new PayloadTooLargeError(
        `a batch holds at most ${maxItems} items (MAX_BATCH_ITEMS); line ${line} is item ${total}`,
      );
    if (jsonDepthExceeds(text))
      return { path: ['line', line], details: [{ path: [], message: 'JSON nested too deeply' }] };
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return { path: ['line', line], details: [{ path: [], message: 'not valid JSON' }] };
    }
    const parsed = BatchItem.safeParse(value);
    if (!parsed.success) {
      const details = parsed.error.issues.map((i) => ({
        path: i.path.filter((p): p is string | number => typeof p !== 'symbol'),
        message: i.message,
      }));
      return { path: ['line', line], details };
    }
    const problems = inputProblems(model, parsed.data);
    if (problems) return { path: ['line', line], details: problems };
    pending.push(parsed.data);
    lineOf[total - 1] = line;
    return;
  };
  /** Handles lines in order; waits only to hand a chunk to the store, or before reporting a bad line. */
  const take = async (lines: string[]) => {
    for (const l of lines) {
      const bad = handle(l);
      if (bad) {
        await settle(0); // a duplicate id on an earlier line is reported before this line
        issues.add(bad.path, bad.details);
      } else if (pending.length >= options.appendEvery) await flush();
    }
  };
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > maxBytes) throw new PayloadTooLargeError(`request body exceeds ${maxBytes} bytes (MAX_BODY_BYTES)`);
      hash.update(chunk);
      const text = carry + decoder.write(chunk);
      const lines = text.split('\n');
      carry = lines.pop()!;
      await take(lines);
    }
    await take([carry + decoder.end()]);
    await flush();
    await settle(0);
  } finally {
    await Promise.allSettled(appending);
  }
  return { total, bodyHash: hash.digest('hex') };
}
