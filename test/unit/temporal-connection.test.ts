// A connection closed while one of its calls waits to be retried, or before a call starts: the call fails, nothing is
// thrown. (The SDK's retry interceptor retries from a timer that Connection.close() does not clear; its retry on the
// closed channel threw inside the timer, an uncaught exception that failed a test process, and the call never
// settled. A call started after the close threw from the same interceptor: it failed a CI run in test/e2e/item-map.)
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { isGrpcServiceError } from '@temporalio/client';
import { apiConnection } from '../../src/client/connection.js';
import { waitFor } from '../helpers/temporal.js';

test(
  'a call waiting to retry when its connection closes fails with CANCELLED instead of throwing from a timer',
  { timeout: 20_000 },
  async () => {
    // A "server" that accepts each connection and drops it at once: every attempt fails with UNAVAILABLE (retried).
    let attempts = 0;
    const server = net.createServer((socket) => {
      attempts++;
      socket.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as net.AddressInfo;
    const connection = apiConnection(`127.0.0.1:${port}`);
    try {
      const call = connection.workflowService.getSystemInfo({}).then(
        () => undefined,
        (err: unknown) => err,
      );
      await waitFor('the first attempt to fail', () => attempts >= 1, 10_000, 5);
      await connection.close(); // the retry, 100 ms or more later, finds the channel closed
      const err = await call;
      assert.ok(isGrpcServiceError(err), `a gRPC error, got ${String(err)}`);
      assert.equal(err.code, 1, 'CANCELLED');
      assert.match(err.details, /connection to Temporal was closed/);
    } finally {
      await connection.close();
      await new Promise((r) => server.close(r));
    }
  },
);

test(
  'a call started after its connection closed fails with CANCELLED; nothing is thrown',
  { timeout: 20_000 },
  async () => {
    // Before: the SDK's retry interceptor threw `savedMessageNext is not a function` (uncaught: it fails this file) and
    // the call never settled. An API's background poll can start a call as the API stops.
    const server = net.createServer((socket) => socket.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as net.AddressInfo;
    const connection = apiConnection(`127.0.0.1:${port}`);
    try {
      await connection.close();
      const err = await Promise.race([
        connection.workflowService.getSystemInfo({}).then(
          () => new Error('the call succeeded'),
          (e: unknown) => e,
        ),
        new Promise((resolve) => setTimeout(() => resolve(new Error('the call did not settle in 5 s')), 5000)),
      ]);
      assert.ok(isGrpcServiceError(err), `a gRPC error, got ${String(err)}`);
      assert.equal(err.code, 1, 'CANCELLED');
      assert.match(err.details, /connection to Temporal was closed/);
    } finally {
      await new Promise((r) => server.close(r));
    }
  },
);
