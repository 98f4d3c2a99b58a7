import { Router } from 'express';
import getAbsoluteFSPath from 'swagger-ui-dist/absolute-path.js';
import { z } from 'zod';
import { defineRoute, json, type ApiRoute } from '../route.js';

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
 * The API's own description, without authentication: `GET /openapi.json`, the document generated from the
 * routes the app mounts (built once), and `GET /docs`, Swagger UI over it.
 */
export const docsRoutes: ApiRoute[] = [
  defineRoute({
    method: 'get',
    path: '/openapi.json',
    operationId: 'openapi',
    summary: 'This document',
    tag: 'Operations',
    public: true,
    responses: { 200: json(z.record(z.string(), z.unknown()), 'The OpenAPI 3.1 document.') },
    handler: (_input, { res, deps }) => {
      res.type('application/json').setHeader('Cache-Control', 'no-cache');
      res.send(deps.openApiJson);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/docs',
    operationId: 'docs',
    summary: 'This document, browsable (Swagger UI, served offline)',
    tag: 'Operations',
    public: true,
    responses: { 200: { description: 'An HTML page.', content: { 'text/html': z.string() } } },
    handler: (_input, { res }) => {
      res.type('html').send(PAGE);
    },
  }),
];

/**
 * The docs page's own files (not part of the API, so not in the document), from the swagger-ui-dist package
 * on disk so the page works offline. Any other name falls through to authentication.
 */
export function docsAssets(): Router {
  const router = Router();
  const assets = getAbsoluteFSPath();
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
