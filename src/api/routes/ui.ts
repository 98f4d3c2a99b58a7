import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RequestHandler, Response } from 'express';
import type { Config } from '../../config.js';
import type { ApiRoute } from '../route.js';

/** The dashboard's files and the type each is served as; no other name under /ui is served. */
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The page runs only its own files: no inline script or style, no other origin. Its data calls go to this API
 * (connect-src 'self'); the link to the Temporal UI is a plain link, which the policy does not restrict.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The ui/ folder at the repository root, found from this module: src/api/routes under tsx, dist/src/api/routes
 * after the build. Undefined when neither holds it (an install that left it out).
 */
function uiDirectory(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return [path.join(here, '..', '..', '..', 'ui'), path.join(here, '..', '..', '..', '..', 'ui')].find((dir) =>
    fs.existsSync(path.join(dir, 'index.html')),
  );
}

function secure(res: Response): Response {
  return res
    .setHeader('Content-Security-Policy', CSP)
    .setHeader('X-Content-Type-Options', 'nosniff')
    .setHeader('Referrer-Policy', 'no-referrer')
    .setHeader('Cache-Control', 'no-cache');
}

/**
 * The dashboard (`GET /ui`): static files of our own, public like /docs (the page holds no data; every data call
 * it makes carries the API key the user enters). `/ui/config.json` tells the page where the Temporal UI is and
 * which optional routes this API serves, read from the declared routes. The Temporal UI is linked at the page's
 * own host, on TEMPORAL_UI_PORT.
 */
export function dashboard(
  config: Pick<Config, 'TEMPORAL_UI_PORT' | 'TEMPORAL_NAMESPACE'>,
  routes: readonly ApiRoute[],
): RequestHandler {
  const dir = uiDirectory();
  const files = new Set(
    dir ? fs.readdirSync(dir).filter((f) => CONTENT_TYPES[path.extname(f)] !== undefined && f !== 'index.html') : [],
  );
  const serves = (method: string, p: string) => routes.some((r) => r.method === method && r.path === p);
  const pageConfig = JSON.stringify({
    temporalUi: { port: config.TEMPORAL_UI_PORT, namespace: config.TEMPORAL_NAMESPACE },
    routes: {
      listTasks: serves('get', '/v1/tasks'),
      setConcurrency: serves('post', '/v1/batches/:id/concurrency'),
    },
  });
  // One middleware rather than routes: static files are not part of the API (the OpenAPI document and its test
  // list routes, and these are none of them), as express.static would serve them.
  return (req, res, next) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !(req.path === '/ui' || req.path.startsWith('/ui/'))) {
      next();
      return;
    }
    const file = req.path === '/ui' || req.path === '/ui/' ? 'index.html' : req.path.slice('/ui/'.length);
    if (file === 'config.json') {
      secure(res).type('application/json').send(pageConfig);
    } else if (!dir) {
      res.status(503).type('text/plain').send('the dashboard files (ui/) are not installed beside the API\n');
    } else if (file === 'index.html' || files.has(file)) {
      secure(res).type(CONTENT_TYPES[path.extname(file)]!).sendFile(file, { root: dir });
    } else {
      next(); // any other name falls through to authentication, as under /docs
    }
  };
}
