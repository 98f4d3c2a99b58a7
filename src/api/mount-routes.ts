import { Router, type RequestHandler } from 'express';
import type { RouteDeps } from './deps.js';
import { parseRequest } from './parse-request.js';
import type { ApiRoute } from './route.js';

/**
 * A router serving declared routes: the rate limit first where a route creates work, then the request parsed
 * with the route's schemas, then its handler with the parsed values. The only way routes are added to the app.
 */
export function mountRoutes(routes: readonly ApiRoute[], deps: RouteDeps): Router {
  const router = Router();
  for (const route of routes) {
    const steps: RequestHandler[] = route.createsWork ? [deps.workLimit] : [];
    steps.push(async (req, res) => {
      const input = parseRequest(route, req);
      await route.handler(input as Parameters<ApiRoute['handler']>[0], { req, res, deps });
    });
    router[route.method](route.path, ...steps);
  }
  return router;
}
