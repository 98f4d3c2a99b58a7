// Without API keys the API has no authentication, so it must not listen beyond loopback, whatever HOST says.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import pino from 'pino';
import { startServer } from '../../src/server.js';
import { testConfig } from '../helpers/temporal.js';

function capturingLog() {
  const lines: any[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

test('with no API_KEYS and HOST=0.0.0.0 the API binds 127.0.0.1 and says why', async () => {
  const { log, lines } = capturingLog();
  // Temporal is never contacted here: the client connects lazily.
  const server = await startServer(testConfig('127.0.0.1:1', { HOST: '0.0.0.0' }), log);
  try {
    const address = server.server.address() as { address: string };
    assert.equal(address.address, '127.0.0.1');
    assert.ok(
      lines.some((l) => l.level === 40 && /loopback only/.test(l.msg)),
      'a warning at start-up',
    );
  } finally {
    await server.close();
  }
});

test('with API_KEYS the API binds the configured HOST and a request without a key is 401', async () => {
  const { log } = capturingLog();
  const server = await startServer(
    testConfig('127.0.0.1:1', { HOST: '0.0.0.0', API_KEYS: 'key-cccccccccccccccc=acme' }),
    log,
  );
  try {
    const address = server.server.address() as { address: string };
    assert.equal(address.address, '0.0.0.0');
    const port = (server.server.address() as { port: number }).port;
    const res = await fetch(`http://127.0.0.1:${port}/v1/batches`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    assert.equal(((await res.json()) as any).error.code, 'unauthorized');
  } finally {
    await server.close();
  }
});
