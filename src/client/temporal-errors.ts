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

/** How Temporal refuses a query when no worker has polled the workflow's task queue lately. */
const NO_POLLER = /no poller seen/i;

/**
 * Translates the Temporal client's errors into the app's: a workflow that does not exist is NotFoundError, a service
 * that cannot be reached or does not answer in time (gRPC UNAVAILABLE, DEADLINE_EXCEEDED), or a query no worker is
 * there to answer (FAILED_PRECONDITION, "no poller seen"), UnavailableError. Only Temporal's own errors are
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
  if (grpc?.code === GrpcStatus.FAILED_PRECONDITION && NO_POLLER.test(grpc.details)) {
    // A query to a workflow whose workers have stopped polling (down, or restarting): only a worker answers it.
    throw Object.assign(
      new UnavailableError(
        `no worker is polling for ${what} (down or restarting), so its live state cannot be read; try again shortly`,
      ),
      { cause: err },
    );
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
