import { z } from 'zod';

/** Batch and task ids: 20 lowercase hex digits (80 random bits), as the client facade makes them. */
export const HEX_ID = /^[0-9a-f]{20}$/;

/** An online task's id, as responses carry it. */
export const TaskId = z.string().regex(HEX_ID);
