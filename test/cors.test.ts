import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import cors from 'cors';
import { Controller, type CorsOptions, Get, HttpException, HttpResponse, Post, ToniError, type ToniApplication, ToniFactory, UseGuards } from 'tonijs';
import { fromNodeMiddleware } from 'tonijs/node';
import { moduleOf, serveApp } from './support/http.js';

const apps: ToniApplication[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

@Controller()
class Routes {
  @Get('/items')
  items() { return ['a']; }

  @Post('/items')
  create() { return 'created'; }

  @UseGuards({ canActivate: () => { throw new HttpException(401, 'Sign in first'); } })
  @Get('/private')
  secret() {}
}

const APP = 'https://app.example.com';
const EVIL = 'https://evil.example.net';

/** Option sets covering each meaning the cors package gives its options. */
const OPTION_SETS: Record<string, CorsOptions & cors.CorsOptions> = {
  defaults: {},
  'a fixed origin': { origin: APP },
  'a list with a RegExp, credentials': { origin: [APP, /\.example\.org$/], credentials: true },
  'reflected, with methods, headers, exposed headers and max age': { origin: true, methods: ['GET', 'POST'], allowedHeaders: ['content-type', 'x-token'], exposedHeaders: 'x-total', maxAge: 600 },
  'origin false': { origin: false },
  'a RegExp, preflights continue': { origin: /app\.example/, preflightContinue: true },
  'another preflight status, the headers alias': { optionsSuccessStatus: 200, headers: 'x-a,x-b' },
  'an origin callback': { origin: (origin: string | undefined, callback: (error: Error | null, allow?: boolean) => void) => callback(null, origin === APP) },
};

/** Requests a browser sends: simple requests and preflights, from allowed and other origins, and none. */
const REQUESTS: Record<string, { method: string; headers: Record<string, string> }> = {
  'GET from the app': { method: 'GET', headers: { origin: APP } },
  'GET from elsewhere': { method: 'GET', headers: { origin: EVIL } },
  'GET without an origin': { method: 'GET', headers: {} },
  'a preflight from the app': { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-token' } },
  'a preflight from elsewhere': { method: 'OPTIONS', headers: { origin: EVIL, 'access-control-request-method': 'PUT' } },
  'a preflight without requested headers': { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'DELETE' } },
};

/** The CORS part of a response: what the comparison is about. */
function corsPart(response: Response): Record<string, string> {
  const part: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (name.startsWith('access-control-') || name === 'vary') part[name] = value;
  });
  return part;
}

describe('enableCors', () => {
  let reference: Server;
  let referenceUrl: string;
  let current: CorsOptions & cors.CorsOptions = {};

  before(async () => {
    // The cors package itself on bare node:http, with the options of the case at hand.
    reference = createServer((req, res) =>
      cors(current)(req, res, () => {
        res.statusCode = 200;
        res.end('ok');
      }),
    );
    await new Promise<void>((resolve) => reference.listen(0, '127.0.0.1', resolve));
    referenceUrl = `http://127.0.0.1:${(reference.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise((resolve) => reference.close(resolve));
  });

  for (const [name, options] of Object.entries(OPTION_SETS)) {
    it(`gives the headers the cors package gives: ${name}`, async () => {
      current = options;
      const { url } = await serveApp(apps, moduleOf([Routes]), (app) => app.enableCors(options));
      for (const [label, request] of Object.entries(REQUESTS)) {
        const [ours, theirs] = await Promise.all([fetch(`${url}/items`, request), fetch(`${referenceUrl}/items`, request)]);
        assert.deepEqual(corsPart(ours), corsPart(theirs), `${name}, ${label}`);
        // A preflight the cors package answers is answered with its status; one it lets through goes to the routes.
        const answeredByCors = request.method === 'OPTIONS' && theirs.status !== 200;
        if (answeredByCors) assert.equal(ours.status, theirs.status, `${name}, ${label}: status`);
        await Promise.all([ours.arrayBuffer(), theirs.arrayBuffer()]);
      }
    });
  }

  it('answers preflights for every path, unknown ones included, after the middleware', async () => {
    const seen: string[] = [];
    const { url } = await serveApp(apps, moduleOf([Routes]), (app) => {
      app.use(async (ctx, next) => {
        seen.push(`${ctx.method} ${ctx.path}`);
        return next();
      });
      app.enableCors({ origin: APP });
    });
    const response = await fetch(`${url}/no/such/route`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'PATCH' } });
    assert.equal(response.status, 204);
    assert.equal(response.headers.get('access-control-allow-origin'), APP);
    assert.equal(response.headers.get('access-control-allow-methods'), 'GET,HEAD,PUT,PATCH,POST,DELETE');
    assert.deepEqual(seen, ['OPTIONS /no/such/route']);
  });

  it('puts its headers on every response: errors, guard refusals and middleware’s own answers', async () => {
    const { url } = await serveApp(apps, moduleOf([Routes]), (app) => {
      app.use((ctx, next) => (ctx.path === '/busy' ? HttpResponse.status(429).header('vary', 'Accept').text('Later').build() : next()));
      app.enableCors({ origin: [APP], credentials: true });
    });
    for (const [path, status] of [['/items', 200], ['/nowhere', 404], ['/private', 401], ['/busy', 429]] as const) {
      const response = await fetch(`${url}${path}`, { headers: { origin: APP } });
      assert.equal(response.status, status, path);
      assert.equal(response.headers.get('access-control-allow-origin'), APP, path);
      assert.equal(response.headers.get('access-control-allow-credentials'), 'true', path);
      await response.arrayBuffer();
    }
    const busy = await fetch(`${url}/busy`, { headers: { origin: APP } });
    assert.equal(busy.headers.get('vary'), 'Accept, Origin', 'a response’s own Vary is kept and Origin added');
  });

  it('an origin function may return its answer or a promise of it; a failing one answers 500 and is logged', async () => {
    const { url, logger } = await serveApp(apps, moduleOf([Routes]), (app) =>
      app.enableCors({
        origin: async (origin) => {
          if (origin === EVIL) throw new Error('origin registry down');
          return origin === APP;
        },
      }),
    );
    const allowed = await fetch(`${url}/items`, { headers: { origin: APP } });
    assert.equal(allowed.headers.get('access-control-allow-origin'), APP);
    const failing = await fetch(`${url}/items`, { headers: { origin: EVIL } });
    assert.equal(failing.status, 500);
    await logger.waitFor((entry) => entry.level === 'error' && (entry.details['err'] as Error).message === 'origin registry down');
  });

  it('refuses options that mean nothing, and a second call', async () => {
    const app = await ToniFactory.create(moduleOf([Routes]), undefined, { logger: false });
    apps.push(app);
    assert.throws(() => app.enableCors({ origin: 42 as never }), (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_INVALID_OPTION' && /origin must be/.test(error.message));
    assert.throws(() => app.enableCors({ maxAge: -1 }), /maxAge must be a whole number of seconds/);
    assert.throws(() => app.enableCors({ optionsSuccessStatus: 404 }), /optionsSuccessStatus must be a 2xx status/);
    assert.throws(() => app.enableCors({ methods: [1] as never }), /methods must be a string or an array of strings/);
    app.enableCors();
    assert.throws(() => app.enableCors(), (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_APP_STATE');
  });

  it('the cors package itself works through fromNodeMiddleware, its preflight answers included', async () => {
    const statuses: number[] = [];
    const { url } = await serveApp(apps, moduleOf([Routes]), (app) => {
      app.use(async (_ctx, next) => {
        const response = await next();
        statuses.push(response.status);
        return response;
      });
      app.use(fromNodeMiddleware(cors({ origin: APP })));
    });
    const preflight = await fetch(`${url}/items`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'POST' } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), APP);
    const actual = await fetch(`${url}/items`, { headers: { origin: APP } });
    assert.deepEqual(await actual.json(), ['a']);
    assert.equal(actual.headers.get('access-control-allow-origin'), APP);
    assert.equal(actual.headers.get('vary'), 'Origin');
    assert.deepEqual(statuses, [204, 200], 'the outer middleware saw the preflight the cors package answered, then the route’s response');
  });
});
