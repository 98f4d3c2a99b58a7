// STUB: GET /openapi.json and /docs (issue 5).
import { Router } from 'express';
import type { AppDeps } from '../app.js';

export function docsRoutes(_deps: AppDeps): Router {
  return Router();
}
