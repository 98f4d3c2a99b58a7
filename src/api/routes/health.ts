import { Router } from 'express';

/** `GET /healthz`: the API process is up and serving. (Readiness against Temporal comes with /readyz.) */
export function healthRoutes(): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  return router;
}
