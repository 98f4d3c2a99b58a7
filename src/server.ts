import type { Server } from 'node:http';
import { createApp } from './api/app.js';
import { BatchClient } from './client/batch-client.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { ModelRepository } from './runtime/model-repository.js';
import { itemStoreFile, SqliteItemStore } from './stores/sqlite-item-store.js';

export interface StartedServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Starts the HTTP API on config.HOST:config.PORT (0 picks a free port). */
export async function startServer(config: Config, log: Logger): Promise<StartedServer> {
  const store = new SqliteItemStore(itemStoreFile(config));
  const client = BatchClient.create(
    { address: config.TEMPORAL_ADDRESS, namespace: config.TEMPORAL_NAMESPACE, taskQueue: config.TASK_QUEUE },
    store,
  );
  const app = createApp({
    client,
    models: new ModelRepository(config.MODEL_REPOSITORY),
    maxBatchItems: config.MAX_BATCH_ITEMS,
    maxBodyBytes: config.MAX_BODY_BYTES,
    log,
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.PORT, config.HOST, () => resolve(s));
    s.once('error', reject);
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.PORT;
  const url = `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${port}`;
  log.info({ url }, 'API listening');
  return {
    server,
    url,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await client.close();
      store.close();
    },
  };
}
