import { Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';

/**
 * The API's connection to Temporal. Lazy, so the API starts while Temporal is down. Its gRPC retries are short
 * (4 attempts, at most 1 s apart) instead of the SDK's default of 10 attempts up to 5 s apart. A request then
 * gets its 503 within a few seconds, and the client retries after the Retry-After it is given.
 */
export function apiConnection(address: string): Connection {
  return Connection.lazy({
    address,
    connectTimeout: '5s',
    interceptors: [makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: 4, maxIntervalMs: () => 1000 }))],
  });
}
