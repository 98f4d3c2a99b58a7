import type { z } from 'zod';
import { InvalidRequestError } from '../../errors.js';

/** Parses a value with a zod schema; on failure throws InvalidRequestError whose details carry field paths. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const details = parsed.error.issues.map((i) => ({
    path: i.path.filter((p): p is string | number => typeof p !== 'symbol'),
    message: i.message,
  }));
  throw new InvalidRequestError(
    `invalid ${where}: ${details.map((d) => `${d.path.join('.') || '(root)'}: ${d.message}`).join('; ')}`,
    details,
  );
}
