import type { ApiRoute } from '../route.js';
import { batchMapRoutes } from './batch-map.js';
import { batchStreamRoutes } from './batch-streams.js';
import { batchSubmitRoutes } from './batch-submit.js';
import { batchRoutes } from './batches.js';
import { docsRoutes } from './docs.js';
import { healthRoutes } from './health.js';
import { kserveRoutes } from './kserve.js';
import { modelRoutes } from './models.js';
import { openAIBatchRoutes } from './openai-batches.js';
import { openAIEmbeddingRoutes } from './openai-embeddings.js';
import { openAIFileRoutes } from './openai-files.js';
import { predictRoutes } from './predict.js';

/** Every route of the HTTP API: what createApp mounts and what the OpenAPI document describes. */
export const API_ROUTES: readonly ApiRoute[] = [
  ...healthRoutes,
  ...docsRoutes,
  ...batchSubmitRoutes,
  ...batchRoutes,
  ...batchStreamRoutes,
  ...batchMapRoutes,
  ...predictRoutes,
  ...modelRoutes,
  ...kserveRoutes,
  ...openAIFileRoutes,
  ...openAIBatchRoutes,
  ...openAIEmbeddingRoutes,
];
