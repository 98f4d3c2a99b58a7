// STUB: replaced by the kserve routes (issue 5).
import { Router } from 'express';
import type { AppDeps } from '../app.js';

export function kserveRoutes(_deps: AppDeps): Router {
  return Router();
}
