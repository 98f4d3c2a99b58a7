import { Router, type Request } from 'express';
import { MethodNotAllowedError } from '../../errors.js';
import type { ApiRoute } from '../route.js';

/** The order Allow lists methods in (RFC 9110's), so it reads the same whatever order routes were declared in. */
const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const rank = (method: string) => (METHOD_ORDER.includes(method) ? METHOD_ORDER.indexOf(method) : METHOD_ORDER.length);
const inOrder = (methods: Iterable<string>): string[] =>
  [...new Set(methods)].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));

/**
 * The methods each declared path serves: its routes' own, HEAD wherever GET is (Express answers HEAD with the GET
 * handler), and OPTIONS everywhere (methodNotAllowed answers it).
 */
export function servedMethods(routes: readonly ApiRoute[]): Map<string, string[]> {
  const byPath = new Map<string, Set<string>>();
  for (const route of routes) {
    const methods = byPath.get(route.path) ?? new Set<string>();
    methods.add(route.method.toUpperCase());
    if (route.method === 'get') methods.add('HEAD');
    byPath.set(route.path, methods);
  }
  return new Map([...byPath].map(([path, methods]) => [path, inOrder([...methods, 'OPTIONS'])]));
}

/**
 * 405 for a method a declared path does not serve (TRACE, PUT, DELETE, ... or GET on a POST route), with an
 * `Allow` header listing those it does; OPTIONS on a declared path is 204 with the same header. The table is
 * built from `routes`, the declarations the app mounts, so it covers every route there is, whoever added it.
 * The error goes to the error handlers like any other, so /v2 paths answer in the protocol's shape.
 *
 * Mounted before every route, authentication and body parsing: which methods a path takes is public (the OpenAPI
 * document lists them), a request the path cannot serve is refused before its body is read, and OPTIONS gets this
 * answer on every declared path (Express's own would list only the methods of the router that matched). Paths no
 * route declares fall through to the 404 handlers.
 */
export function methodNotAllowed(routes: readonly ApiRoute[]): Router {
  const router = Router();
  /** The methods of every declared path the request's path matched (several paths can match one URL). */
  const matched = new WeakMap<Request, Set<string>>();
  for (const [path, methods] of servedMethods(routes)) {
    router.all(path, (req, _res, next) => {
      const allow = matched.get(req) ?? new Set<string>();
      for (const m of methods) allow.add(m);
      matched.set(req, allow);
      next();
    });
  }
  router.use((req, res, next) => {
    const allow = matched.get(req);
    if (!allow || (allow.has(req.method) && req.method !== 'OPTIONS')) {
      next();
      return;
    }
    const methods = inOrder(allow);
    res.setHeader('Allow', methods.join(', '));
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    next(
      new MethodNotAllowedError(
        `${req.method} is not allowed on ${req.path}; it allows ${methods.join(', ')}`,
        methods,
      ),
    );
  });
  return router;
}
