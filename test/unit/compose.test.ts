// docker-compose.yml cannot be run here (no Docker engine), so what can be checked is: it is what `npm run compose`
// writes from the cluster's topology; it validates against the Compose Specification; each service runs what
// `batchline cluster` runs, with the CPU weights `batchline cluster` gives as niceness; the Temporal server's
// environment renders the server config as intended; the small shell and Node snippets it carries work.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import {
  COMPOSE_DYNAMIC_CONFIG_FILE,
  COMPOSE_POSTGRES,
  COMPOSE_SCHEMA_DIR,
  COMPOSE_SHARED,
  CONTAINER_ENV,
  IMAGE_ROOT,
  type ComposeDocument,
} from '../../src/cluster/compose.js';
import {
  DEFAULT_HISTORY_SHARDS,
  schemaSteps,
  schemaToolEnv,
  temporalServerEnv,
  TEMPORAL_SERVER_ARGS,
} from '../../src/cluster/temporal-server.js';
import { cpuPriorityEnv } from '../../src/cluster/cluster.js';
import {
  DEFAULT_CPU_WEIGHT,
  NICE_WEIGHTS,
  niceForWeight,
  roleEnv,
  ROLES,
  SERVER_CPU_WEIGHTS,
  type Role,
} from '../../src/cluster/topology.js';
import { loadConfig } from '../../src/config.js';
import { COMPOSE_VERSIONS, staleFiles } from '../../scripts/write-compose.js';
import { temporalServerPaths } from '../../scripts/temporal-server.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const COMPOSE_GO = 'github.com/compose-spec/compose-go/v2@v2.9.1';
const doc = parse(fs.readFileSync(path.join(root, 'docker-compose.yml'), 'utf8')) as ComposeDocument;
const services = doc.services;

/** Compose's interpolation: `$$`, `${X}`, `${X:-default}`, `${X-default}`, `${X:?error}`, `${X?error}`. */
function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value.replace(/\$\$|\$\{(\w+)(?:(:?)([-?])([^}]*))?\}/g, (match, name: string, colon, op, arg: string) => {
    if (match === '$$') return '$';
    const v = env[name];
    const unset = v === undefined || (colon === ':' && v === '');
    if (op === '?' && unset) throw new Error(`${name}: ${arg}`);
    return op === '-' && unset ? arg : (v ?? '');
  });
}

/** The Compose Specification's JSON schema at the version `docker compose` v2 embeds, from the Go module proxy. */
function composeValidator() {
  const out = execFileSync('go', ['mod', 'download', '-json', COMPOSE_GO], { cwd: os.tmpdir(), timeout: 300_000 });
  const file = path.join((JSON.parse(out.toString()) as { Dir: string }).Dir, 'schema', 'compose-spec.json');
  const { $schema, ...schema } = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  // It names draft-07 without the `#` Ajv registers it under; Ajv's default dialect is draft-07.
  assert.match(String($schema), /draft-07/);
  return new Ajv({ allErrors: true, allowUnionTypes: true, strictTypes: false }).compile(schema);
}

function tempDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batchline-compose-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('docker-compose.yml and deploy/temporal/dynamic-config.yaml are what `npm run compose` writes now', async () => {
  const stale = await staleFiles();
  assert.deepEqual(stale, [], `${stale.join(', ')} out of date: run \`npm run compose\` and commit the result`);
});

describe('the Compose Specification schema', () => {
  const validate = composeValidator();
  const errorsOf = (d: unknown) => (validate(d) ? [] : (validate.errors ?? []).map((e) => e.instancePath));

  test('accepts docker-compose.yml', () => {
    assert.equal(validate(doc), true, JSON.stringify(validate.errors, null, 2));
  });

  test('rejects a document with an unknown key, a wrong type or an unknown condition', () => {
    const broken = (change: (d: ComposeDocument) => void) => {
      const d = structuredClone(doc);
      change(d);
      return d;
    };
    const replicas = broken((d) => Object.assign(d.services.worker!, { replica: 4 }));
    assert.ok(errorsOf(replicas).includes('/services/worker'));
    const ports = broken((d) => Object.assign(d.services.api!, { ports: 3000 }));
    assert.ok(errorsOf(ports).includes('/services/api/ports'));
    const condition = broken((d) =>
      Object.assign(d.services.worker!, { depends_on: { temporal: { condition: 'up' } } }),
    );
    assert.ok(errorsOf(condition).some((p) => p.startsWith('/services/worker/depends_on')));
    assert.ok(errorsOf(broken((d) => Object.assign(d, { service: {} }))).includes(''));
  });
});

describe('the services run what `batchline cluster` runs', () => {
  const env = (name: string) => services[name]!.environment!;
  /** What cluster.ts gives each process beyond roleEnv; the API here also needs API_KEYS (it binds 0.0.0.0). */
  const clusterPerProcess = ['DATA_DIR', 'WORKER_METRICS_PORT', 'HOST', 'PORT'];

  for (const role of Object.keys(ROLES) as Role[]) {
    test(`${role}: batchline ${ROLES[role].command} with roleEnv and only the per-container settings`, () => {
      assert.deepEqual(services[role]!.command, ['node', 'bin/batchline.mjs', ROLES[role].command]);
      assert.deepEqual(env(role), { ...roleEnv(role, COMPOSE_SHARED), ...CONTAINER_ENV[role] });
      const allowed = role === 'api' ? [...clusterPerProcess, 'API_KEYS'] : clusterPerProcess;
      for (const key of Object.keys(CONTAINER_ENV[role])) assert.ok(allowed.includes(key), `${role} sets ${key}`);
    });
  }

  test('the shared settings name the compose services: PostgreSQL, its item-store database, Temporal', () => {
    const pg = env('postgresql');
    const url = new URL(interpolate(COMPOSE_SHARED.DATABASE_URL, {}));
    assert.ok(services[url.hostname]?.image?.startsWith('postgres:'));
    assert.equal(url.username, pg.POSTGRES_USER);
    assert.equal(url.password, interpolate(pg.POSTGRES_PASSWORD!, {}));
    assert.equal(url.pathname, `/${pg.POSTGRES_DB}`);
    const [host, port] = COMPOSE_SHARED.TEMPORAL_ADDRESS.split(':');
    assert.ok(services[host!]);
    // Published on the host's loopback only: the frontend runs without authorisation.
    assert.ok(services[host!]!.ports?.includes(`127.0.0.1:${port}:${port}`));
  });

  test('the API binds 0.0.0.0 and refuses to start without API_KEYS', () => {
    assert.equal(env('api').HOST, '0.0.0.0');
    assert.match(env('api').API_KEYS!, /^\$\{API_KEYS:\?[^}]+\}$/);
    assert.throws(() => interpolate(env('api').API_KEYS!, {}), /API_KEYS: set API_KEYS/);
    assert.throws(() => interpolate(env('api').API_KEYS!, { API_KEYS: '' }), /API_KEYS/);
    assert.equal(interpolate(env('api').API_KEYS!, { API_KEYS: 'k'.repeat(16) }), 'k'.repeat(16));
    const others = Object.keys(services).filter((s) => s !== 'api');
    assert.deepEqual(
      others.filter((s) => JSON.stringify(services[s]).includes('API_KEYS')),
      [],
      'only the API is given the keys',
    );
  });

  test('temporal-schema runs schemaSteps with the schema tool, on the connection schemaToolEnv builds', () => {
    const [shell, flags, script] = services['temporal-schema']!.command!;
    assert.deepEqual([shell, flags], ['sh', '-ec']);
    const steps = schemaSteps(COMPOSE_SCHEMA_DIR).map((s) => ['temporal-sql-tool', ...s]);
    assert.deepEqual(
      script!.split('\n').map((line) => line.split(' ')),
      steps,
    );
    assert.deepEqual(env('temporal-schema'), schemaToolEnv(COMPOSE_POSTGRES));
    // The image's schema directory has the layout of the server module's (the cluster's copy of it, when built).
    const local = temporalServerPaths().schemaDir;
    assert.equal(path.basename(local), path.basename(COMPOSE_SCHEMA_DIR));
    if (fs.existsSync(local)) {
      for (const step of steps.filter((s) => s.includes('-d'))) {
        const dir = step[step.indexOf('-d') + 1]!.replace(COMPOSE_SCHEMA_DIR, local);
        assert.ok(fs.existsSync(dir), `${dir} exists`);
      }
    }
  });

  test('temporal runs TEMPORAL_SERVER_ARGS with temporalServerEnv, its broadcast address set by the shell', () => {
    const [shell, flag, , arg0, ...args] = services.temporal!.command!;
    assert.deepEqual([shell, flag, arg0, args], ['sh', '-c', 'temporal-server', TEMPORAL_SERVER_ARGS]);
    const expected = temporalServerEnv({
      postgres: COMPOSE_POSTGRES,
      bindIp: '0.0.0.0',
      historyShards: '${TEMPORAL_HISTORY_SHARDS:-4}',
      dynamicConfigFile: COMPOSE_DYNAMIC_CONFIG_FILE,
    });
    assert.deepEqual(env('temporal'), expected);
    assert.equal(interpolate(env('temporal').TEMPORAL_HISTORY_SHARDS!, {}), '4');
    assert.equal(interpolate(env('temporal').TEMPORAL_HISTORY_SHARDS!, { TEMPORAL_HISTORY_SHARDS: '512' }), '512');
    assert.equal(env('temporal').TEMPORAL_PG_PASSWORD, env('postgresql').POSTGRES_PASSWORD);
    assert.equal(COMPOSE_DYNAMIC_CONFIG_FILE, `${IMAGE_ROOT}/deploy/temporal/dynamic-config.yaml`);
  });

  test('temporal-setup registers the namespace the batchline services use, once the server is healthy', () => {
    assert.deepEqual(services['temporal-setup']!.command, ['node', 'bin/batchline.mjs', 'temporal-setup']);
    assert.equal(env('temporal-setup').TEMPORAL_ADDRESS, COMPOSE_SHARED.TEMPORAL_ADDRESS);
    assert.equal(env('temporal-setup').TEMPORAL_NAMESPACE, COMPOSE_SHARED.TEMPORAL_NAMESPACE);
  });
});

describe('CPU weights: one table (topology.ts) for the compose services and the cluster processes', () => {
  const roles = Object.keys(ROLES) as Role[];
  const shares = (name: string) => services[name]!.cpu_shares;

  test('every service has cpu_shares, its weight in the role table or the servers table', () => {
    const expected: Record<string, number> = { ...SERVER_CPU_WEIGHTS };
    for (const role of roles) expected[role] = ROLES[role].cpuWeight;
    assert.deepEqual(Object.fromEntries(Object.keys(services).map((name) => [name, shares(name)])), expected);
  });

  test('the batch workers weigh less than every service on the online path, which keeps at least the default', () => {
    // A sync prediction goes API -> Temporal server (on PostgreSQL) -> interactive worker -> back.
    const onlinePath = ['api', 'temporal', 'postgresql', 'interactive'];
    for (const name of onlinePath) {
      assert.ok(shares(name) >= DEFAULT_CPU_WEIGHT, `${name}: ${shares(name)} >= Compose's default 1024`);
      assert.ok(shares('worker') < shares(name), `worker (${shares('worker')}) < ${name} (${shares(name)})`);
    }
  });

  test("niceForWeight follows the kernel's weight table: nice 0 weighs 1024, each step about 1 / 1.25", () => {
    assert.equal(NICE_WEIGHTS.length, 20);
    for (let n = 1; n < NICE_WEIGHTS.length; n++) {
      const step = NICE_WEIGHTS[n - 1]! / NICE_WEIGHTS[n]!;
      assert.ok(step >= 1.19 && step <= 1.3, `nice ${n - 1} / nice ${n}: ${step}`);
    }
    NICE_WEIGHTS.forEach((w, n) => assert.equal(niceForWeight(w), n, `weight ${w}`));
    assert.deepEqual(
      [2048, 1100, 900, 100, 16, 2].map(niceForWeight),
      [0, 0, 1, 10, 19, 19],
      'nearest by ratio; above the default, 0 (a negative nice needs privileges)',
    );
    for (let w = 2; w <= 2048; w++) assert.ok(niceForWeight(w) <= niceForWeight(w - 1), `monotonic at ${w}`);
    assert.throws(() => niceForWeight(0), /positive/);
  });

  test('batchline cluster runs each worker at the nice of its weight, which the worker config accepts', () => {
    for (const role of roles.filter((r) => ROLES[r].command === 'worker')) {
      const env = cpuPriorityEnv(role);
      assert.deepEqual(env, { WORKER_NICE: String(niceForWeight(ROLES[role].cpuWeight)) });
      assert.equal(loadConfig(env).WORKER_NICE, niceForWeight(ROLES[role].cpuWeight), role);
    }
    assert.ok(
      Number(cpuPriorityEnv('worker').WORKER_NICE) > Number(cpuPriorityEnv('interactive').WORKER_NICE),
      'the batch worker runs at a higher nice than the interactive one',
    );
  });

  test('what batchline cluster cannot lower (the API, the servers it starts) has the default weight', () => {
    // Only a worker lowers itself (WORKER_NICE); the cluster starts everything else at nice 0.
    for (const role of roles.filter((r) => ROLES[r].command !== 'worker')) {
      assert.deepEqual(cpuPriorityEnv(role), {});
      assert.equal(ROLES[role].cpuWeight, DEFAULT_CPU_WEIGHT, `${role} runs at nice 0 under batchline cluster`);
    }
    for (const [name, weight] of Object.entries(SERVER_CPU_WEIGHTS)) {
      assert.equal(weight, DEFAULT_CPU_WEIGHT, `${name} runs at nice 0 under batchline cluster`);
    }
  });
});

describe('start order and health', () => {
  test('each service waits on the conditions the cluster waits for', () => {
    const waits = Object.fromEntries(
      Object.entries(services).map(([name, s]) => [
        name,
        Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([dep, d]) => [dep, d.condition])),
      ]),
    );
    const batchline = { 'temporal-setup': 'service_completed_successfully', postgresql: 'service_healthy' };
    assert.deepEqual(waits, {
      postgresql: {},
      'temporal-schema': { postgresql: 'service_healthy' },
      temporal: { 'temporal-schema': 'service_completed_successfully', postgresql: 'service_healthy' },
      'temporal-setup': { temporal: 'service_healthy' },
      'temporal-ui': { temporal: 'service_healthy' },
      worker: batchline,
      interactive: batchline,
      api: batchline,
    });
  });

  test('a service waited on as healthy has a health check; one waited on to complete is never restarted', () => {
    for (const s of Object.values(services)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        if (condition === 'service_healthy') assert.ok(services[dep]!.healthcheck, `${dep} has a health check`);
        if (condition === 'service_completed_successfully') assert.equal(services[dep]!.restart, undefined);
      }
    }
  });

  test('the worker scales: no fixed name and no published port', () => {
    assert.equal('container_name' in services.worker!, false);
    assert.equal(services.worker!.ports, undefined);
  });

  test("the API's health check passes on 200 from /healthz and fails otherwise", async (t) => {
    const script = services.api!.healthcheck!.test.at(-1)!;
    assert.match(script, new RegExp(`127\\.0\\.0\\.1:${CONTAINER_ENV.api.PORT}/healthz`));
    let status = 200;
    const server = http.createServer((req, res) => res.writeHead(req.url === '/healthz' ? status : 404).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => server.listening && server.close());
    const port = (server.address() as { port: number }).port;
    // Asynchronously: the server answering runs on this event loop.
    const run = (s: string) =>
      promisify(execFile)(process.execPath, ['-e', s], { timeout: 10_000 }).then(
        () => 0,
        (err: { code?: unknown }) => err.code,
      );
    const here = script.replace(`:${CONTAINER_ENV.api.PORT}/`, `:${port}/`);
    assert.equal(await run(here), 0);
    status = 503;
    assert.equal(await run(here), 1);
    await new Promise((resolve) => server.close(resolve));
    assert.equal(await run(here), 1, 'nothing listening');
  });

  test("the server's start script exports the container's first address and passes the arguments on", (t) => {
    const dir = tempDir(t);
    const stub = (name: string, body: string) =>
      fs.writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    stub('hostname', '[ "$1" = -i ] && echo "172.18.0.5 fd00::5"');
    stub('temporal-server', 'echo "$TEMPORAL_BROADCAST_ADDRESS|$*"');
    const [shell, flag, script, ...args] = services.temporal!.command!.map((a) => interpolate(a, {}));
    const out = execFileSync(shell!, [flag!, script!, ...args], { env: { PATH: `${dir}:/usr/bin:/bin` } });
    assert.equal(out.toString().trim(), `172.18.0.5|${TEMPORAL_SERVER_ARGS.join(' ')}`);
  });
});

describe('the Temporal server binary (when `node scripts/setup.mjs --cluster` has built it)', () => {
  const binary = temporalServerPaths().server;
  const built = fs.existsSync(binary);

  test('renders deploy/temporal/batchline.yaml from the temporal service environment as intended', (t) => {
    if (!built) return t.skip(`${binary} not built`);
    const at = (flag: string) => TEMPORAL_SERVER_ARGS[TEMPORAL_SERVER_ARGS.indexOf(flag) + 1]!;
    const serviceEnv = Object.fromEntries(Object.entries(env()).map(([k, v]) => [k, interpolate(v, {})]));
    const res = spawnSync(
      binary,
      ['--config', path.join(at('--root'), at('--config')), '--env', at('--env'), 'render-config'],
      { cwd: root, env: { PATH: process.env.PATH, ...serviceEnv, TEMPORAL_BROADCAST_ADDRESS: '172.18.0.5' } },
    );
    assert.equal(res.status, 0, `render-config failed: ${res.stdout}${res.stderr}`);
    const cfg = parse(res.stdout.toString()) as RenderedConfig;
    for (const store of Object.values(cfg.persistence.datastores)) {
      assert.equal(store.sql.connectAddr, `${COMPOSE_POSTGRES.host}:${COMPOSE_POSTGRES.port}`);
      assert.equal(store.sql.user, COMPOSE_POSTGRES.user);
    }
    assert.equal(cfg.persistence.numHistoryShards, DEFAULT_HISTORY_SHARDS);
    assert.equal(cfg.global.membership.broadcastAddress, '172.18.0.5');
    for (const s of Object.values(cfg.services)) assert.equal(s.rpc.bindOnIP, '0.0.0.0');
    assert.equal(String(cfg.services.frontend!.rpc.grpcPort), COMPOSE_SHARED.TEMPORAL_ADDRESS.split(':')[1]);
    assert.equal(cfg.dynamicConfigClient.filepath, COMPOSE_DYNAMIC_CONFIG_FILE);
  });

  test('accepts deploy/temporal/dynamic-config.yaml', (t) => {
    if (!built) return t.skip(`${binary} not built`);
    const res = spawnSync(binary, ['validate-dynamic-config', 'deploy/temporal/dynamic-config.yaml'], { cwd: root });
    assert.equal(res.status, 0, `${res.stdout}${res.stderr}`);
    assert.doesNotMatch(res.stdout.toString(), /warning|error/);
  });

  function env() {
    return services.temporal!.environment!;
  }
});

test('the Dockerfile has the build targets compose names, at the versions the scripts pin', () => {
  const dockerfile = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  const stages = new Map(
    dockerfile.split(/^(?=FROM )/m).map((text) => [/^FROM \S+ AS (\S+)$/m.exec(text)?.[1], text] as const),
  );
  const stage = (name: string) => stages.get(name) ?? assert.fail(`no stage ${name}`);
  for (const s of Object.values(services).filter((x) => x.build)) {
    const text = stage(s.build!.target);
    assert.match(text, new RegExp(`^WORKDIR ${IMAGE_ROOT}$`, 'm'));
    for (const [name, value] of Object.entries(s.build!.args ?? {})) {
      assert.match(dockerfile, new RegExp(`^ARG ${name}=${value.replaceAll('.', '\\.')}$`, 'm'));
    }
  }
  assert.deepEqual(services.temporal!.build!.args, {
    TEMPORAL_SERVER_VERSION: COMPOSE_VERSIONS.temporalServer,
    TEMPORAL_CLI_VERSION: COMPOSE_VERSIONS.temporalCli,
  });
  assert.equal(services['temporal-ui']!.image, `temporalio/ui:${COMPOSE_VERSIONS.temporalUi}`);
  assert.match(stage('temporal'), new RegExp(`^COPY .* ${path.dirname(COMPOSE_SCHEMA_DIR)}$`, 'm'));
  assert.match(stage('temporal'), /^COPY deploy\/temporal deploy\/temporal$/m);
  assert.equal(COMPOSE_SHARED.MODEL_REPOSITORY, `${IMAGE_ROOT}/models`);
  assert.match(stage('batchline'), /^COPY models models$/m);
});

interface RenderedConfig {
  persistence: { numHistoryShards: number; datastores: Record<string, { sql: { connectAddr: string; user: string } }> };
  global: { membership: { broadcastAddress: string } };
  services: Record<string, { rpc: { bindOnIP: string; grpcPort: number } }>;
  dynamicConfigClient: { filepath: string };
}
