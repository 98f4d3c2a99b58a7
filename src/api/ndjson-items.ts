import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { PayloadTooLargeError } from '../errors.js';
import type { ResolvedModel } from '../runtime/model-repository.js';
import { DuplicateItemIdError, type ItemRow } from '../stores/item-store.js';
import type { ItemIssues } from './batch-submission.js';
import { NdjsonLines, type LineOutput } from './ndjson-lines.js';

/**
 * Appends handed to the store and not yet finished, at most: the store writes while the next lines are parsed, and
 * a reader that waited for every second append waited on the store's thread for a third of a 100k-line upload's
 * parsing time (its turns, on two cores, are late). Eight appends of 500 lines are about 1 MiB of pending text.
 */
export const MAX_APPENDS_IN_FLIGHT = 8;

export interface NdjsonItemsOptions {
  model: ResolvedModel;
  maxBytes: number;
  maxItems: number;
  /** Collects bad lines (path `line.<n>...`, n from 1), in line order; once one is found, nothing more is appended. */
  issues: ItemIssues;
  /**
   * Stores items `from`, `from + 1`, ... (the staged batch), in their stored form, in the background; appends are
   * finished in the order they were made. Rejects with DuplicateItemIdError for an id already stored.
   */
  append(rows: ItemRow[], from: number): Promise<void>;
  /** Items handed to `append` at a time (the store's ItemStore.appendSize). */
  appendEvery: number;
  /** Whether to hash the body (an idempotent request's fingerprint holds it; other requests skip the work). */
  hashBody: boolean;
}

/**
 * Reads an NDJSON body (one `{ id?, inputs }` per line) and hands valid items to the store in chunks as they
 * arrive (NdjsonLines checks and serialises them), so the body is never held whole: memory stays at a few chunks
 * whatever the batch size. The store writes one chunk while the next lines are parsed. Over `maxBytes` or
 * `maxItems` it stops at once with 413. Returns the item count and (with hashBody) the sha256 of the body's bytes;
 * whether it returns or throws, no append is left running.
 */
export async function readNdjsonItems(
  body: Readable,
  options: NdjsonItemsOptions,
): Promise<{ total: number; bodyHash?: string }> {
  const { model, issues, maxBytes, maxItems } = options;
  const hash = options.hashBody ? createHash('sha256') : undefined;
  const lines = new NdjsonLines({ model, maxItems, groupSize: options.appendEvery });
  let bytes = 0;
  /** Items handed to the store so far. */
  let appended = 0;
  /** The line of each stored item, so a duplicate id found by the store is reported by its line. */
  const lineOf: number[] = [];
  /** Appends in flight, oldest first. Each records its own duplicate id as an issue once it finishes. */
  const appending: Promise<void>[] = [];
  let duplicateFound = false;
  /** Waits until at most `keep` appends are in flight; throws a store fault other than a duplicate id. */
  const settle = async (keep: number) => {
    while (appending.length > keep) await appending.shift();
  };
  const append = async (rows: ItemRow[], rowLines: number[]) => {
    const from = appended;
    appended += rows.length;
    for (let k = 0; k < rowLines.length; k++) lineOf[from + k] = rowLines[k]!;
    const done = options.append(rows, from).catch((err: unknown) => {
      if (!(err instanceof DuplicateItemIdError)) throw err;
      // Later appends were already under way; only the first duplicate is reported, as if appending had stopped.
      if (duplicateFound) return;
      duplicateFound = true;
      issues.add(['line', lineOf[err.index]!, 'id'], [{ path: [], message: `duplicate item id '${err.itemId}'` }]);
    });
    done.catch(() => {}); // awaited by settle(); this only keeps a fault from being reported as unhandled first
    appending.push(done);
    await settle(MAX_APPENDS_IN_FLIGHT - 1);
  };
  /** Acts on a piece's outputs in line order; waits only to hand a chunk to the store, or before a bad line. */
  const apply = async (outputs: LineOutput[]) => {
    for (const out of outputs) {
      if (out.kind === 'rows') {
        if (issues.bad === 0) await append(out.rows, out.lines);
      } else if (out.kind === 'bad') {
        await settle(0); // a duplicate id on an earlier line is reported before this line
        issues.add(out.path, out.details);
      } else {
        throw new PayloadTooLargeError(
          `a batch holds at most ${maxItems} items (MAX_BATCH_ITEMS); line ${out.line} is item ${out.total}`,
        );
      }
    }
  };
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > maxBytes) throw new PayloadTooLargeError(`request body exceeds ${maxBytes} bytes (MAX_BODY_BYTES)`);
      hash?.update(chunk);
      await apply(lines.write(chunk));
    }
    await apply(lines.end());
    await settle(0);
  } finally {
    await Promise.allSettled(appending);
  }
  return { total: lines.total, ...(hash ? { bodyHash: hash.digest('hex') } : {}) };
}
