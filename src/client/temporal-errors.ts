import { isGrpcServiceError, ServiceError, WorkflowNotFoundError } from '@temporalio/client';
import { NotFoundError, UnavailableError } from '../errors.js';

/** The gRPC status codes we act on (from the gRPC spec). */
export const GrpcStatus = {
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  FAILED_PRECONDITION: 9,
  UNAVAILABLE: 14,
} as const;

/** The gRPC status of a Temporal client error (the service error or its cause), if it has one. */
export function grpcCode(err: unknown): number | undefined {
  if (isGrpcServiceError(err)) return err.code;
  if (err instanceof ServiceError && isGrpcServiceError(err.cause)) return err.cause.code;
  return undefined;
}

/**
 * How Temporal refuses a query (FAILED_PRECONDITION) while the workflow cannot answer for now, and what the client is
 * told: no worker has polled its task queue lately (down, restarting or starved), or its last workflow task failed
 * or timed out and waits for its next attempt.
 */
const QUERY_REFUSALS: [RegExp, (what: string) => string][] = [
  [/no poller seen/i, (what) => `no worker is polling for ${what} (down, restarting or overloaded)`],
  [/workflow task in failed state/i, (what) => `${what} is recovering from a failed workflow task`],
];

/**
 * Translates the Temporal client's errors into the app's: a workflow that does not exist is NotFoundError, a service
 * that cannot be reached or does not answer in time (gRPC UNAVAILABLE, DEADLINE_EXCEEDED), or a query the workflow
 * cannot answer for now (FAILED_PRECONDITION: QUERY_REFUSALS), UnavailableError. Only Temporal's own errors are
 * translated: anything else (an item store's error, a bug) is rethrown unchanged, so a fault elsewhere is never
 * reported as Temporal's.
 */
export function mapTemporalError(err: unknown, what: string): never {
  if (err instanceof WorkflowNotFoundError) throw new NotFoundError(`${what} not found`);
  const grpc = isGrpcServiceError(err)
    ? err
    : err instanceof ServiceError && isGrpcServiceError(err.cause)
      ? err.cause
      : undefined;
  if (grpc?.code === GrpcStatus.NOT_FOUND) throw new NotFoundError(`${what} not found`);
  if (grpc?.code === GrpcStatus.UNAVAILABLE || grpc?.code === GrpcStatus.DEADLINE_EXCEEDED) {
    // Not always unreachable: a server whose own database fails answers UNAVAILABLE too.
    throw Object.assign(new UnavailableError('the Temporal service is unavailable; try again shortly'), { cause: err });
  }
  const refusal =
    grpc?.code === GrpcStatus.FAILED_PRECONDITION
      ? QUERY_REFUSALS.find(([words]) => words.test(grpc.details))
      : undefined;
  if (refusal) {
    // Only a worker answers a query: its live state cannot be read until one does.
    const message = `${refusal[1](what)}, so its live state cannot be read; try again shortly`;
    throw Object.assign(new UnavailableError(message), { cause: err });
  }
  throw err;
}

/**
 * Whether a listing may have failed because the server could not use its page token: a well-formed cursor that no
 * listing gave out decodes to a token the server refuses (INVALID_ARGUMENT from Elasticsearch, UNKNOWN from the SQL
 * visibility store). UNKNOWN is also how the server masks its own faults, so the caller confirms that the listing
 * works without the token before it blames the cursor.
 */
export function isRefusedPageToken(err: unknown): boolean {
  const grpc = isGrpcServiceError(err)
    ? err
    : err instanceof ServiceError && isGrpcServiceError(err.cause)
      ? err.cause
      : undefined;
  return grpc?.code === GrpcStatus.INVALID_ARGUMENT || grpc?.code === GrpcStatus.UNKNOWN;
}
