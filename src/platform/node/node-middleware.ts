import type { IncomingMessage, ServerResponse } from 'node:http';
import { ToniError } from '../../errors.js';
import { RequestContext } from '../../http/context.js';
import { HttpException } from '../../http/http-exception.js';
import { HttpResponse } from '../../http/http-response.js';
import type { Middleware } from '../../http/middleware.js';
import { isErrorStatus, statusText } from '../../http/status.js';
import { NodeExchange } from './http-adapter.js';

/**
 * Express/Connect middleware: `(req, res, next) => void` on node's request and response. Typed
 * for Express (`RequestHandler`) it is accepted as well: it receives node's objects, without
 * Express's additions (`req.get()`, `res.json()`), which the common middleware do not need.
 */
export type NodeMiddleware<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> = (
  req: Req,
  res: Res,
  next: (error?: unknown) => void,
) => unknown;

/**
 * Runs Express/Connect middleware (`cors`, `helmet`, `compression`, `pino-http`, `serve-static`, …)
 * as toni middleware, with `NodeHttpAdapter`. What it does to the native request and response
 * stays: headers it sets (`res.setHeader`) are sent with toni's response (toni's own win over
 * same-named ones), wrappers it puts on `res` (compression) see toni write. When it calls
 * `next()`, the rest of the chain runs; `next(error)` answers as a thrown error would (an error
 * with a 4xx `status` or `statusCode`, as `http-errors` makes them, answers that status). When it
 * answers the request itself (a file, a preflight), `next()` of the middleware around it resolves
 * with a copy of what it sent, which can no longer be changed.
 *
 * @example
 * import helmet from 'helmet';
 * import { fromNodeMiddleware } from 'tonijs/node';
 * app.use(fromNodeMiddleware(helmet()));
 */
export function fromNodeMiddleware<Req extends IncomingMessage, Res extends ServerResponse>(middleware: NodeMiddleware<Req, Res>): Middleware {
  if (typeof middleware !== 'function') {
    throw new ToniError('TONI_ERR_INVALID_PIPELINE', `fromNodeMiddleware() takes an Express/Connect middleware function (req, res, next), got ${middleware === undefined ? 'undefined' : typeof middleware}.`);
  }
  const name = middleware.name === '' ? 'node middleware' : middleware.name;
  const wrapped: Middleware = (ctx, next) => {
    const exchange = ctx instanceof RequestContext ? ctx.exchange : undefined;
    if (!(exchange instanceof NodeExchange)) {
      throw new ToniError('TONI_ERR_INVALID_PIPELINE', `fromNodeMiddleware(${name}) needs the node:http request and response of NodeHttpAdapter; this application uses another HTTP adapter.`);
    }
    const req = exchange.raw;
    const res = exchange.rawResponse;
    return new Promise<HttpResponse>((resolve, reject) => {
      let settled = false;
      const answeredByIt = () => {
        if (settled) return;
        settled = true;
        resolve(sentResponse(res));
      };
      const proceed = (error?: unknown) => {
        if (settled) return;
        settled = true;
        res.off('finish', answeredByIt);
        res.off('close', answeredByIt);
        // Express's next('route') and next('router') skip routers; here they simply go on.
        if (error === undefined || error === null || error === 'route' || error === 'router') resolve(next());
        else reject(asHttpError(error));
      };
      res.once('finish', answeredByIt);
      res.once('close', answeredByIt);
      try {
        const returned = middleware(req as Req, res as Res, proceed);
        // Express 5 style: an async middleware's rejection is its next(error).
        if (returned instanceof Promise) returned.then(undefined, (error: unknown) => proceed(error ?? new Error(`${name} rejected with ${String(error)}`)));
      } catch (error) {
        proceed(error ?? new Error(`${name} threw ${String(error)}`));
      }
    });
  };
  Object.defineProperty(wrapped, 'name', { value: name });
  return wrapped;
}

/** What a Node middleware sent by itself, as far as toni can read it back. */
function sentResponse(res: ServerResponse): HttpResponse {
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(res.getHeaders())) {
    if (value !== undefined) headers[key] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  const status = res.statusCode >= 200 && res.statusCode <= 599 ? res.statusCode : 500;
  return HttpResponse.fromBuilder(status, headers, undefined);
}

/** An error passed to `next(error)`: `http-errors`' 4xx statuses are kept (their message only when `expose`d). */
function asHttpError(error: unknown): unknown {
  if (typeof error !== 'object' || error === null || error instanceof HttpException) return error;
  const { status, statusCode, expose, message } = error as { status?: unknown; statusCode?: unknown; expose?: unknown; message?: unknown };
  const code = typeof status === 'number' ? status : typeof statusCode === 'number' ? statusCode : undefined;
  if (code === undefined || !isErrorStatus(code) || code >= 500) return error;
  const shown = expose !== false && typeof message === 'string' && message !== '' ? message : statusText(code);
  return new HttpException(code, shown, { cause: error });
}
