import { isGrpcServiceError, ServiceError, WorkflowNotFoundError } from '@temporalio/client';
import { NotFoundError, UnavailableError } from '../errors.js';

/** The gRPC status codes we act on (from the gRPC spec). */
export const GrpcStatus = { DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6, UNAVAILABLE: 14 } as const;

/** Translates Temporal client errors into the app's errors; anything unrecognised is rethrown unchanged. */
export function mapTemporalError(err: unknown, what: string): never {
  if (err instanceof WorkflowNotFoundError) throw new NotFoundError(`${what} not found`);
  const grpc = isGrpcServiceError(err)
    ? err
    : err instanceof ServiceError && isGrpcServiceError(err.cause)
      ? err.cause
      : undefined;
  if (grpc?.code === GrpcStatus.NOT_FOUND) throw new NotFoundError(`${what} not found`);
  if (
    grpc?.code === GrpcStatus.UNAVAILABLE ||
    grpc?.code === GrpcStatus.DEADLINE_EXCEEDED ||
    (err instanceof Error && /connect|ECONNREFUSED|deadline/i.test(err.message) && !grpc)
  ) {
    throw new UnavailableError('the Temporal service is unreachable; try again shortly');
  }
  throw err;
}
