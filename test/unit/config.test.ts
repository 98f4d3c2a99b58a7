import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, configToEnv, loadConfig } from '../../src/config.js';

/** Runs fn and returns the ConfigError it throws; fails the test if it throws nothing or something else. */
function configError(env: NodeJS.ProcessEnv): ConfigError {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  return caught;
}

describe('loadConfig', () => {
  test('an empty environment yields the documented defaults', () => {
    const config = loadConfig({});

    assert.equal(config.PORT, 3000);
    assert.equal(config.HOST, '127.0.0.1');
    assert.equal(config.TEMPORAL_ADDRESS, '127.0.0.1:7233');
    assert.equal(config.TEMPORAL_UI_PORT, 8233);
    assert.equal(config.TEMPORAL_NAMESPACE, 'default');
    assert.equal(config.TASK_QUEUE, 'batchline');
    assert.equal(config.MAX_BATCH_ITEMS, 100_000);
    assert.equal(config.MAX_BODY_BYTES, 64 * 1024 * 1024);
    assert.equal(config.LOG_LEVEL, 'info');
  });

  test('default DATA_DIR and MODEL_REPOSITORY come back absolute, resolved from ./data and ./models', () => {
    const config = loadConfig({});

    assert.ok(path.isAbsolute(config.DATA_DIR), config.DATA_DIR);
    assert.ok(path.isAbsolute(config.MODEL_REPOSITORY), config.MODEL_REPOSITORY);
    assert.equal(config.DATA_DIR, path.resolve('./data'));
    assert.equal(config.MODEL_REPOSITORY, path.resolve('./models'));
  });

  test('relative paths given in the environment are resolved absolute; absolute ones are kept', () => {
    const config = loadConfig({ DATA_DIR: 'some/state', MODEL_REPOSITORY: '/opt/models' });

    assert.equal(config.DATA_DIR, path.resolve('some/state'));
    assert.equal(config.MODEL_REPOSITORY, '/opt/models');
  });

  test('numeric strings are coerced to numbers', () => {
    const config = loadConfig({
      PORT: '8080',
      TEMPORAL_UI_PORT: '9233',
      MAX_BATCH_ITEMS: '25',
      MAX_BODY_BYTES: '4096',
    });

    assert.equal(config.PORT, 8080);
    assert.equal(config.TEMPORAL_UI_PORT, 9233);
    assert.equal(config.MAX_BATCH_ITEMS, 25);
    assert.equal(config.MAX_BODY_BYTES, 4096);
  });

  test('values given as strings are taken as they are', () => {
    const config = loadConfig({
      HOST: '0.0.0.0',
      TEMPORAL_ADDRESS: 'temporal.internal:7234',
      TEMPORAL_NAMESPACE: 'batch',
      TASK_QUEUE: 'q1',
      LOG_LEVEL: 'debug',
    });

    assert.equal(config.HOST, '0.0.0.0');
    assert.equal(config.TEMPORAL_ADDRESS, 'temporal.internal:7234');
    assert.equal(config.TEMPORAL_NAMESPACE, 'batch');
    assert.equal(config.TASK_QUEUE, 'q1');
    assert.equal(config.LOG_LEVEL, 'debug');
  });

  test('an empty string is treated as unset and falls back to the default', () => {
    const config = loadConfig({
      PORT: '',
      HOST: '',
      TEMPORAL_ADDRESS: '',
      TEMPORAL_NAMESPACE: '',
      DATA_DIR: '',
      MAX_BATCH_ITEMS: '',
      LOG_LEVEL: '',
    });

    assert.equal(config.PORT, 3000);
    assert.equal(config.HOST, '127.0.0.1');
    assert.equal(config.TEMPORAL_ADDRESS, '127.0.0.1:7233');
    assert.equal(config.TEMPORAL_NAMESPACE, 'default');
    assert.equal(config.DATA_DIR, path.resolve('./data'));
    assert.equal(config.MAX_BATCH_ITEMS, 100_000);
    assert.equal(config.LOG_LEVEL, 'info');
  });

  test('variables outside the schema are ignored', () => {
    const config = loadConfig({ SOMETHING_ELSE: 'x', HOME: '/root' });

    assert.equal(Object.hasOwn(config, 'SOMETHING_ELSE'), false);
    assert.equal(Object.hasOwn(config, 'HOME'), false);
  });

  test('the returned config is frozen', () => {
    const config = loadConfig({});

    assert.ok(Object.isFrozen(config));
    assert.throws(() => {
      (config as { PORT: number }).PORT = 1;
    }, TypeError);
    assert.equal(config.PORT, 3000);
  });

  test('one ConfigError names every bad variable and its value', () => {
    const err = configError({ PORT: 'abc', TEMPORAL_ADDRESS: 'nocolon', LOG_LEVEL: 'loud', HOST: 'fine' });

    assert.equal(err.name, 'ConfigError');
    assert.equal(err.issues.length, 3);
    assert.match(err.message, /PORT="abc"/);
    assert.match(err.message, /TEMPORAL_ADDRESS="nocolon"/);
    assert.match(err.message, /host:port/);
    assert.match(err.message, /LOG_LEVEL="loud"/);
    assert.doesNotMatch(err.message, /HOST=/);
  });

  test('out-of-range numbers are rejected, naming the variable', () => {
    const err = configError({ PORT: '70000', TEMPORAL_UI_PORT: '-1', MAX_BATCH_ITEMS: '0', MAX_BODY_BYTES: '1.5' });

    assert.equal(err.issues.length, 4);
    assert.match(err.message, /PORT="70000"/);
    assert.match(err.message, /TEMPORAL_UI_PORT="-1"/);
    assert.match(err.message, /MAX_BATCH_ITEMS="0"/);
    assert.match(err.message, /MAX_BODY_BYTES="1.5"/);
  });

  test('a TEMPORAL_ADDRESS with a non-numeric port is rejected', () => {
    const err = configError({ TEMPORAL_ADDRESS: 'localhost:http' });

    assert.match(err.message, /TEMPORAL_ADDRESS="localhost:http"/);
  });

  test('true/false settings take true, 1, false and 0, default as documented, and refuse anything else by name', () => {
    const defaults = loadConfig({});
    assert.equal(defaults.WORKER_SCHED_IDLE, false);
    assert.equal(defaults.DYNAMIC_BATCHING, true);
    assert.equal(defaults.ORT_ALLOW_SPINNING, false);

    const given = loadConfig({ WORKER_SCHED_IDLE: '1', DYNAMIC_BATCHING: 'false', ORT_ALLOW_SPINNING: 'true' });
    assert.equal(given.WORKER_SCHED_IDLE, true);
    assert.equal(given.DYNAMIC_BATCHING, false);
    assert.equal(given.ORT_ALLOW_SPINNING, true);
    assert.equal(loadConfig({ DYNAMIC_BATCHING: '0' }).DYNAMIC_BATCHING, false);

    const err = configError({ WORKER_SCHED_IDLE: 'yes', DYNAMIC_BATCHING: 'off' });
    assert.equal(err.issues.length, 2);
    assert.match(err.message, /WORKER_SCHED_IDLE="yes"/);
    assert.match(err.message, /DYNAMIC_BATCHING="off"/);
  });
});

test('configToEnv round-trips through loadConfig, API keys and CIDR lists included', () => {
  const config = loadConfig({
    API_KEYS: 'key-aaaaaaaaaaaaaaaa=acme,key-bbbbbbbbbbbbbbbb',
    WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8, 10.0.0.0/8',
  });
  assert.deepEqual(
    [...config.API_KEYS],
    [
      ['key-aaaaaaaaaaaaaaaa', 'acme'],
      ['key-bbbbbbbbbbbbbbbb', 'default'],
    ],
  );
  assert.deepEqual(loadConfig(configToEnv(config)), config);
});

test('API_KEYS and WEBHOOK_ALLOWED_CIDRS refuse short keys, bad tenants and non-CIDRs by name', () => {
  assert.throws(() => loadConfig({ API_KEYS: 'short=acme' }), /API_KEYS.*16 to 512 printable/);
  // A key longer than the API accepts in a header could never authenticate.
  assert.throws(() => loadConfig({ API_KEYS: `${'k'.repeat(513)}=acme` }), /API_KEYS.*16 to 512 printable/);
  assert.equal(loadConfig({ API_KEYS: `${'k'.repeat(512)}=acme` }).API_KEYS.size, 1);
  assert.throws(() => loadConfig({ API_KEYS: 'key-aaaaaaaaaaaaaaaa=bad tenant' }), /API_KEYS.*tenant 'bad tenant'/);
  assert.throws(() => loadConfig({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.1' }), /WEBHOOK_ALLOWED_CIDRS.*not a CIDR/);
});
