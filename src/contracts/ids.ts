import { randomBytes } from 'node:crypto';
import { z } from 'zod';

/** Batch and task ids: 20 lowercase hex digits (80 random bits), safe in URLs and workflow ids. */
export const HEX_ID = /^[0-9a-f]{20}$/;

/** A new batch or task id, matching HEX_ID. */
export function newHexId(): string {
  return randomBytes(10).toString('hex');
}

/** An online task's id, as responses carry it. */
export const TaskId = z.string().regex(HEX_ID);
