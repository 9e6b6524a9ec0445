import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { gunzipSync } from 'node:zlib';
import compression from 'compression';
import helmet from 'helmet';
import { pino } from 'pino';
import { pinoHttp } from 'pino-http';
import { Controller, Get, type HttpContext, HttpException, HttpResponse, Post, ToniError, type ToniApplication } from 'tonijs';
import { fromNodeMiddleware } from 'tonijs/node';
import { moduleOf, serveApp } from './support/http.js';

const apps: ToniApplication[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

const BIG = Array.from({ length: 400 }, (_, index) => ({ index, text: `item number ${index}` }));

@Controller()
class Routes {
  @Get('/big')
  big() { return BIG; }

  @Get('/small')
  small() { return { ok: true }; }

  @Get('/streamed')
  streamed() {
    async function* parts() {
      for (let index = 0; index < 50; index++) yield new TextEncoder().encode(`line ${index} of a streamed body that compresses well\n`);
    }
    return HttpResponse.ok().header('content-type', 'text/plain').stream(parts()).build();
  }

  @Post('/echo')
  echo(ctx: HttpContext) { return ctx.body; }

  @Get('/fail')
  fail() { throw new HttpException(409, 'Conflict here'); }
}

/** A GET with node's client, which (unlike fetch) hands back the body as sent, compressed or not. */
function getRaw(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('fromNodeMiddleware', () => {
  it('helmet: its headers go out with toni’s response', async () => {
    const { url } = await serveApp(apps, moduleOf([Routes]), (app) => app.use(fromNodeMiddleware(helmet())));
    const response = await fetch(`${url}/small`);
    assert.deepEqual(await response.json(), { ok: true });
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(response.headers.get('x-frame-options'), 'SAMEORIGIN');
    assert.match(response.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8', 'toni’s own headers are kept');
    const missing = await fetch(`${url}/nowhere`);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('x-content-type-options'), 'nosniff', 'also on errors');
  });

  it('compression: large bodies and streams are gzipped when asked for, small ones are not', async () => {
    const { url } = await serveApp(apps, moduleOf([Routes]), (app) => app.use(fromNodeMiddleware(compression())));
    const big = await getRaw(`${url}/big`, { 'accept-encoding': 'gzip' });
    assert.equal(big.status, 200);
    assert.equal(big.headers['content-encoding'], 'gzip');
    assert.deepEqual(JSON.parse(gunzipSync(big.body).toString('utf8')), BIG);
    assert.ok(big.body.length < JSON.stringify(BIG).length / 2, 'it is actually smaller');
    const streamed = await getRaw(`${url}/streamed`, { 'accept-encoding': 'gzip' });
    assert.equal(streamed.headers['content-encoding'], 'gzip');
    assert.match(gunzipSync(streamed.body).toString('utf8'), /^line 0 of.*\nline 49 of/s);
    const small = await getRaw(`${url}/small`, { 'accept-encoding': 'gzip' });
    assert.equal(small.headers['content-encoding'], undefined);
    assert.deepEqual(JSON.parse(small.body.toString('utf8')), { ok: true });
    const plain = await getRaw(`${url}/big`, {});
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.deepEqual(JSON.parse(plain.body.toString('utf8')), BIG);
  });

  it('pino-http: one log line per request, with the status toni answered', async () => {
    const lines: Record<string, unknown>[] = [];
    let logged!: () => void;
    const done = new Promise<void>((resolve) => (logged = resolve));
    const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>); if (lines.length === 2) logged(); } });
    const { url } = await serveApp(apps, moduleOf([Routes]), (app) => app.use(fromNodeMiddleware(pinoHttp({ logger }))));
    await (await fetch(`${url}/small`)).arrayBuffer();
    await (await fetch(`${url}/fail`)).arrayBuffer();
    await done;
    assert.deepEqual(lines.map((line) => [(line['req'] as { url: string }).url, (line['res'] as { statusCode: number }).statusCode]), [['/small', 200], ['/fail', 409]]);
  });

  it('next(error) answers like a thrown error: http-errors’ 4xx status and exposed message, anything else 500', async () => {
    const { url, logger } = await serveApp(apps, moduleOf([Routes]), (app) =>
      app.use(
        fromNodeMiddleware(function limiter(req, _res, next) {
          if (req.url === '/small?limited') next(Object.assign(new Error('Too many requests, slow down'), { status: 429, expose: true }));
          else if (req.url === '/small?hidden') next(Object.assign(new Error('internal detail'), { statusCode: 403, expose: false }));
          else if (req.url === '/small?broken') next(new Error('middleware broke'));
          else next();
        }),
      ),
    );
    const limited = await fetch(`${url}/small?limited`);
    assert.equal(limited.status, 429);
    assert.equal(((await limited.json()) as { message: string }).message, 'Too many requests, slow down');
    const hidden = await fetch(`${url}/small?hidden`);
    assert.equal(hidden.status, 403);
    assert.equal(((await hidden.json()) as { message: string }).message, 'Forbidden');
    const broken = await fetch(`${url}/small?broken`);
    assert.equal(broken.status, 500);
    const entry = await logger.waitFor((e) => e.level === 'error');
    assert.equal(entry.details['middleware'], 'middleware limiter (#1)');
    assert.equal((await fetch(`${url}/small`)).status, 200);
  });

  it('a Node body parser is a mistake toni names: the body is toni’s to read', async () => {
    const { url, logger } = await serveApp(apps, moduleOf([Routes]), (app) =>
      app.use(
        fromNodeMiddleware((req, _res, next) => {
          req.resume();
          req.on('end', () => next());
        }),
      ),
    );
    const response = await fetch(`${url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    assert.equal(response.status, 500);
    const entry = await logger.waitFor((e) => e.level === 'error');
    assert.match((entry.details['err'] as Error).message, /already read by a Node middleware .*remove the body parser/);
  });

  it('takes functions only, and works only on NodeHttpAdapter', () => {
    assert.throws(() => fromNodeMiddleware('helmet' as never), (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_INVALID_PIPELINE');
    const wrapped = fromNodeMiddleware(helmet());
    assert.throws(() => wrapped({} as never, () => Promise.reject(new Error('unused'))), /needs the node:http request and response of NodeHttpAdapter/);
  });
});
