// STUB: replaced by the models routes (issue 5).
import { Router } from 'express';
import type { AppDeps } from '../app.js';

export function modelRoutes(_deps: AppDeps): Router {
  return Router();
}
