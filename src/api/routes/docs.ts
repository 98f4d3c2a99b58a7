import { Router } from 'express';
import getAbsoluteFSPath from 'swagger-ui-dist/absolute-path.js';
import type { AppDeps } from '../app.js';
import { buildOpenApiDocument } from '../openapi.js';

/** Files of the swagger-ui-dist package the page loads; nothing else of the package is served. */
const UI_ASSETS = new Set([
  'swagger-ui.css',
  'index.css',
  'swagger-ui-bundle.js',
  'swagger-ui-standalone-preset.js',
  'favicon-32x32.png',
  'favicon-16x16.png',
]);

const PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>batchline API</title>
    <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css">
    <link rel="stylesheet" type="text/css" href="/docs/index.css">
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="/docs/favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="/docs/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="/docs/swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
`;

const INITIALIZER = `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    persistAuthorization: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: 'StandaloneLayout',
  });
};
`;

/**
 * The API's own description, without authentication:
 * - `GET /openapi.json`: the OpenAPI 3.1 document generated from the routes' zod schemas (built once).
 * - `GET /docs`: Swagger UI over it, served from the swagger-ui-dist package on disk, so it works offline.
 */
export function docsRoutes(_deps: AppDeps): Router {
  const router = Router();
  const document = JSON.stringify(buildOpenApiDocument());
  const assets = getAbsoluteFSPath();

  router.get('/openapi.json', (_req, res) => {
    res.type('application/json').setHeader('Cache-Control', 'no-cache');
    res.send(document);
  });

  router.get('/docs', (_req, res) => {
    res.type('html').send(PAGE);
  });

  router.get('/docs/:asset', (req, res, next) => {
    const asset = req.params.asset;
    if (asset === 'swagger-initializer.js') {
      res.type('text/javascript').send(INITIALIZER);
    } else if (UI_ASSETS.has(asset)) {
      res.sendFile(asset, { root: assets, maxAge: '1d' });
    } else {
      next();
    }
  });

  return router;
}
