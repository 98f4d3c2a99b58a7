import type { BatchStatus, ItemStatus } from './batch.js';

/**
 * Every event a batch's stream (SSE, `results?follow=true`) and its webhooks carry: one per finished item, one
 * when the batch ends. The same names on both, so a receiver handles either the same way.
 */
export const EventType = {
  itemSucceeded: 'item.succeeded',
  itemFailed: 'item.failed',
  batchCompleted: 'batch.completed',
  batchCanceled: 'batch.canceled',
  batchFailed: 'batch.failed',
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

/** The event of an item that finished. */
export function itemEventType(status: Extract<ItemStatus, 'succeeded' | 'failed'>): EventType {
  return status === 'succeeded' ? EventType.itemSucceeded : EventType.itemFailed;
}

/** The event of a batch's end. */
export function endEventType(status: Exclude<BatchStatus, 'running'>): EventType {
  return { completed: EventType.batchCompleted, canceled: EventType.batchCanceled, failed: EventType.batchFailed }[
    status
  ];
}
