import type { Server } from 'node:http';
import { createApp } from './api/app.js';
import { BatchClient } from './client/batch-client.js';
import { PredictClient } from './client/predict-client.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { ModelRepository } from './runtime/model-repository.js';
import { openApiStores, startRetention } from './stores/open-stores.js';

export interface StartedServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/**
 * Starts the HTTP API on config.HOST:config.PORT (0 picks a free port). Without API keys it refuses to listen
 * beyond loopback: it binds 127.0.0.1 instead and says so.
 */
export async function startServer(config: Config, log: Logger): Promise<StartedServer> {
  const stores = await openApiStores(config);
  const stopRetention = startRetention(stores.items, config, log);
  const temporal = { address: config.TEMPORAL_ADDRESS, namespace: config.TEMPORAL_NAMESPACE };
  const batches = BatchClient.create({ ...temporal, taskQueue: config.TASK_QUEUE }, stores.items);
  const predict = PredictClient.create({ ...temporal, taskQueue: config.INTERACTIVE_TASK_QUEUE });
  const app = createApp({
    batches,
    predict,
    models: new ModelRepository(config.MODEL_REPOSITORY),
    idempotency: stores.idempotency,
    workLimiter: stores.workLimiter,
    openai: stores.openai,
    metrics: new Metrics('api'),
    config,
    log,
  });
  let host = config.HOST;
  if (config.API_KEYS.size === 0) {
    if (!LOOPBACK.test(host)) host = '127.0.0.1';
    log.warn(
      { requestedHost: config.HOST, host },
      'no API_KEYS configured: authentication is off, so the API listens on loopback only (set API_KEYS to serve other hosts)',
    );
  }
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.PORT, host, () => resolve(s));
    s.once('error', reject);
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.PORT;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info({ url, tenants: new Set(config.API_KEYS.values()).size, itemStore: stores.items.backend }, 'API listening');
  return {
    server,
    url,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await batches.close();
      await predict.close();
      stopRetention();
      await stores.close();
    },
  };
}
