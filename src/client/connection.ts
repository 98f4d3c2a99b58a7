import { InterceptingCall, Metadata, status, type Interceptor } from '@grpc/grpc-js';
import {
  Connection,
  defaultGrpcRetryOptions,
  makeGrpcRetryInterceptor,
  type ConnectionOptions,
} from '@temporalio/client';

/** What grpc-js throws when a call is made on a closed channel. */
const CHANNEL_SHUT_DOWN = 'Channel has been shut down';

/**
 * The SDK's gRPC retry interceptor retries a failed call from a timer that `Connection.close()` does not clear. A
 * retry that fires after the close makes its call on the shut-down channel, which throws inside the timer: an
 * uncaught exception (one failed a test file in CI: a connection closed while one of its calls, started in the
 * background, waited to be retried), and the caller's promise never settles. Placed below the retry interceptor,
 * this ends such a call with CANCELLED instead: not retried, so its caller gets an error. The same for a call started
 * after the close (an API's background poll as it stops): the retry interceptor hands its caller the last message
 * it was given before the status, through a callback it only has once a message came, so an empty message comes
 * first (without it, `savedMessageNext is not a function` was thrown, uncaught, and the call never settled).
 */
const endCallsAfterClose: Interceptor = (options, nextCall) => {
  try {
    return new InterceptingCall(nextCall(options));
  } catch (err) {
    if (!(err instanceof Error) || err.message !== CHANNEL_SHUT_DOWN) throw err;
    return new InterceptingCall({
      start(_metadata, listener) {
        const closed = {
          code: status.CANCELLED,
          details: 'the connection to Temporal was closed',
          metadata: new Metadata(),
        };
        process.nextTick(() => {
          listener?.onReceiveMessage?.(null);
          listener?.onReceiveStatus?.(closed);
        });
      },
      cancelWithStatus() {},
      getPeer: () => '',
      sendMessageWithContext() {},
      sendMessage() {},
      startRead() {},
      halfClose() {},
      getAuthContext: () => null,
    });
  }
};

/** The SDK's retries (`retry`: its defaults when absent), and a retry after close ends the call (above). */
function interceptors(retry?: Parameters<typeof defaultGrpcRetryOptions>[0]): Interceptor[] {
  return [makeGrpcRetryInterceptor(defaultGrpcRetryOptions(retry)), endCallsAfterClose];
}

/**
 * A connection to Temporal with the SDK's default retries, checked on connect (Connection.connect): every client
 * connection of batchline's processes, tests and benches but the API's (apiConnection).
 */
export function connectTemporal(
  address: string,
  options: Omit<ConnectionOptions, 'address' | 'interceptors'> = {},
): Promise<Connection> {
  return Connection.connect({ ...options, address, interceptors: interceptors() });
}

/**
 * The API's connection to Temporal. Lazy, so the API starts while Temporal is down. Its gRPC retries are short
 * (4 attempts, at most 1 s apart) instead of the SDK's default of 10 attempts up to 5 s apart. A request then
 * gets its 503 within a few seconds, and the client retries after the Retry-After it is given.
 */
export function apiConnection(address: string): Connection {
  return Connection.lazy({
    address,
    connectTimeout: '5s',
    interceptors: interceptors({ maxAttempts: 4, maxIntervalMs: () => 1000 }),
  });
}
