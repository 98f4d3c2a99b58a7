// STUB: replaced by the predict routes (issue 5).
import { Router } from 'express';
import type { AppDeps } from '../app.js';

export function predictRoutes(_deps: AppDeps): Router {
  return Router();
}
