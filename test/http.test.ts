import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IncomingMessage } from 'node:http';
import { connect, createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import * as v from 'valibot';
import { z } from 'zod';
import {
  type Class,
  Controller,
  Delete,
  Get,
  type HttpContext,
  HttpException,
  HttpResponse,
  Injectable,
  type Logger,
  type LogLevel,
  Module,
  Patch,
  Post,
  Put,
  ToniError,
  type ToniApplication,
  type ToniApplicationOptions,
  ToniFactory,
  inject,
} from 'tonijs';
import { NodeHttpAdapter, WsAdapter } from 'tonijs/node';
import { rawExchange, rawRequest } from './support/http.js';
import type { Gateway } from 'tonijs/websocket';
import { listenFailed } from '../src/platform/node/listen-error.js';

// ---------------------------------------------------------------------------------------------
// Helpers

interface LogEntry {
  readonly level: LogLevel;
  readonly details: Record<string, unknown>;
  readonly message: string | undefined;
}

/** A logger that records every call, so tests can assert what was (not) logged. */
class CapturingLogger implements Logger {
  readonly entries: LogEntry[] = [];
  error(details: object, message?: string): void { this.#push('error', details, message); }
  warn(details: object, message?: string): void { this.#push('warn', details, message); }
  info(details: object, message?: string): void { this.#push('info', details, message); }
  debug(details: object, message?: string): void { this.#push('debug', details, message); }
  errors(): LogEntry[] { return this.entries.filter((entry) => entry.level === 'error'); }
  #push(level: LogLevel, details: object, message: string | undefined): void {
    this.entries.push({ level, details: details as Record<string, unknown>, message });
  }
}

interface Served {
  readonly app: ToniApplication;
  readonly url: string;
  readonly port: number;
  readonly logger: CapturingLogger;
}

const perTestApps: ToniApplication[] = [];

afterEach(async () => {
  await Promise.all(perTestApps.splice(0).map((app) => app.close()));
});

/** Creates an application (closed after the test) and listens on a free port. */
async function serve(module: Class, options: ToniApplicationOptions = {}, apps: ToniApplication[] = perTestApps): Promise<Served> {
  const logger = new CapturingLogger();
  const app = await ToniFactory.create(module, new NodeHttpAdapter(), { logger, ...options });
  apps.push(app);
  const url = await app.listen(0, '127.0.0.1');
  assert.equal(url, app.getUrl());
  return { app, url, port: Number(new URL(url).port), logger };
}

function controllerModule(...controllers: Class[]): Class {
  @Module({ controllers })
  class TestModule {}
  return TestModule;
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => (resolve = done));
  return { promise, resolve };
}

/** Resolves 'connected' or the connection error's code. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** The whole response to `GET path` on a fresh connection, as the bytes on the wire (latin1). */
async function rawGet(port: number, path: string): Promise<{ statusLine: string; headerLines: string[]; body: string }> {
  const text = (await rawExchange(port, `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)).toString('latin1');
  const headEnd = text.indexOf('\r\n\r\n');
  assert.ok(headEnd > 0, `not an HTTP response: ${JSON.stringify(text)}`);
  const [statusLine = '', ...headerLines] = text.slice(0, headEnd).split('\r\n');
  return { statusLine, headerLines, body: text.slice(headEnd + 4) };
}

/** The header lines named `name` (case-insensitive), as sent. */
function linesNamed(lines: readonly string[], name: string): string[] {
  return lines.filter((line) => line.toLowerCase().startsWith(`${name}:`));
}

function listenTcp(): Promise<TcpServer> {
  return new Promise((resolve, reject) => {
    const server = createTcpServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function chunk(text: string): string {
  return `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;
}

async function expectError(response: Response, status: number, error: string): Promise<Record<string, unknown>> {
  assert.equal(response.status, status);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  const body = (await response.json()) as Record<string, unknown>;
  assert.equal(body['statusCode'], status);
  assert.equal(body['error'], error);
  assert.equal(typeof body['message'], 'string');
  return body;
}

function postJson(url: string, body: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { method: 'POST', body, ...init, headers: { 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) } });
}

function isPolluted(): boolean {
  return (({}) as Record<string, unknown>)['polluted'] !== undefined || Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted');
}

// ---------------------------------------------------------------------------------------------
// The main application, shared by the request/response tests

@Injectable()
class Greeter {
  greet(name: string): string { return `Hello, ${name}!`; }
}

const thrown = { sync: new Error('database password is hunter2'), async: new Error('async secret: s3cr3t') };
const bodiesSeen: unknown[] = [];

@Controller('/api')
class ResponsesController {
  readonly #greeter = inject(Greeter);

  @Get('/json') json() { return { ok: true, list: [1, 2, 3], text: 'héllo ✓' }; }
  @Get('/null') returnsNull() { return null; }
  @Get('/string') returnsString() { return 'plain'; }
  @Get('/nothing') nothing(): void {}
  @Get('/async-nothing') async asyncNothing(): Promise<void> {}
  @Get('/async-value') async asyncValue() { return { later: true }; }
  @Get('/greet/:name') greet(ctx: HttpContext) { return { greeting: this.#greeter.greet(ctx.params['name'] ?? '?') }; }

  @Get('/builder/created') created() { return HttpResponse.created().header('Location', '/things/1').json({ id: 1 }).build(); }
  @Get('/builder/unbuilt') unbuilt() { return HttpResponse.ok().header('x-unbuilt', 'yes').json({ built: false }); }
  @Get('/builder/async-unbuilt') async asyncUnbuilt() { return HttpResponse.accepted().text('queued'); }
  @Get('/builder/no-content') noContent() { return HttpResponse.noContent().header('x-reason', 'done').build(); }
  @Get('/builder/bad-request') badRequest() { return HttpResponse.badRequest().json({ reason: 'nope' }).build(); }
  @Get('/builder/not-found') notFound() { return HttpResponse.notFound().text('gone').build(); }
  @Get('/builder/teapot') teapot() { return HttpResponse.status(418).header('X-Count', 3).text('short and stout').build(); }
  @Get('/builder/empty') empty() { return HttpResponse.ok().build(); }
  @Get('/builder/custom-type') customType() { return HttpResponse.ok().header('Content-Type', 'application/vnd.toni+json').json({ a: 1 }).build(); }
  @Get('/builder/bytes') bytes() { return HttpResponse.ok().bytes(new Uint8Array([0, 1, 2, 255])).build(); }
  @Get('/builder/last-header-wins') lastHeader() { return HttpResponse.ok().header('x-v', 'one').header('X-V', 'two').text('ok').build(); }

  @Get('/errors/sync') syncError(): never { throw thrown.sync; }
  @Get('/errors/async') async asyncError(): Promise<never> { throw thrown.async; }
  @Get('/errors/non-error') nonError(): never { throw 'a plain string with a secret'; } // eslint-disable-line no-throw-literal
  @Get('/errors/http') httpError(): never { throw new HttpException(409, 'Name already taken'); }
  @Get('/errors/http-async') async httpErrorAsync(): Promise<never> { throw new HttpException(401, 'Who are you?'); }
  @Get('/errors/http-teapot') teapotError(): never { throw new HttpException(418, 'I am a teapot'); }
  @Get('/errors/http-default') httpDefault(): never { throw new HttpException(403); }
  @Get('/errors/http-details') httpDetails(): never {
    throw new HttpException(422, 'Invalid order', { details: { field: 'quantity', statusCode: 999, error: 'overridden?' }, cause: new Error('hidden cause') });
  }
  @Get('/errors/bigint') bigint() { return { n: 1n }; }
  @Get('/errors/function') fn() { return () => 1; }
  @Get('/errors/builder-bigint') builderBigint() { return HttpResponse.ok().json({ n: 2n }).build(); }
  @Get('/errors/bad-status') badStatus() { return HttpResponse.status(99).build(); }
  @Get('/errors/interim-status') interimStatus() { return HttpResponse.status(101).text('switching?'); }
  @Get('/errors/interim-exception') interimException(): never { throw new HttpException(100, 'continue?'); }
}

@Controller('/ctx')
class ContextController {
  @Get('/params/:org/repos/:repo') params(ctx: HttpContext) { return { params: ctx.params }; }
  @Get('/query') query(ctx: HttpContext) {
    return {
      isSearchParams: ctx.query instanceof URLSearchParams,
      q: ctx.query.get('q'),
      tags: ctx.query.getAll('tag'),
      plus: ctx.query.get('plus'),
      missing: ctx.query.get('missing'),
    };
  }
  @Get('/headers') headers(ctx: HttpContext) {
    return {
      isHeaders: ctx.headers instanceof Headers,
      custom: ctx.headers.get('X-CUSTOM-HEADER'),
      lower: ctx.headers.get('x-custom-header'),
      absent: ctx.headers.get('x-absent'),
    };
  }
  @Get('/raw') raw(ctx: HttpContext) {
    const raw = ctx.raw;
    assert.ok(raw instanceof IncomingMessage);
    return { isIncomingMessage: true, url: raw.url, method: raw.method, header: raw.headers['x-raw'] };
  }
  @Get('/info') info(ctx: HttpContext) { return { method: ctx.method, path: ctx.path, url: ctx.url, remoteAddress: ctx.remoteAddress }; }
  @Post('/body') body(ctx: HttpContext<unknown>) {
    bodiesSeen.push(ctx.body);
    return { body: ctx.body, type: ctx.body === undefined ? 'undefined' : typeof ctx.body };
  }
  @Put('/body') put(ctx: HttpContext<unknown>) { return { method: ctx.method, body: ctx.body }; }
  @Patch('/body') patch(ctx: HttpContext<unknown>) { return { method: ctx.method, body: ctx.body }; }
  @Delete('/body') remove(ctx: HttpContext<unknown>) { return { method: ctx.method, body: ctx.body ?? null }; }
}

@Controller('routes')
class RoutingController {
  @Get('/users/me') me() { return { route: 'me' }; }
  @Get('/users/:id') user(ctx: HttpContext) { return { route: 'user', id: ctx.params['id'] }; }
  @Delete('/users/:id') deleteUser(ctx: HttpContext) { return { route: 'delete-user', id: ctx.params['id'] }; }
  @Get('/users/:id/posts/:postId') post(ctx: HttpContext) { return { route: 'post', params: ctx.params }; }
  @Get('/files/*') file(ctx: HttpContext) { return { route: 'files', rest: ctx.params['*'] }; }
  @Get('/only-get') onlyGet() { return { route: 'only-get' }; }
  @Post('/only-post') onlyPost() { return { route: 'only-post' }; }
  @Get('/multi') multiGet() { return { route: 'multi-get' }; }
  @Delete('/multi') multiDelete() { return { route: 'multi-delete' }; }
  @Get('/items') items() { return { route: 'items' }; }
  @Get('/mixed/b/:y') mixedGet(ctx: HttpContext) { return { route: 'get b/:y', params: ctx.params }; }
  @Post('/mixed/:x/:y') mixedPost(ctx: HttpContext) { return { route: 'post :x/:y', params: ctx.params }; }
}

const ZodUser = z.object({
  name: z.string().min(1).transform((name) => name.toUpperCase()),
  age: z.number().int(),
  tags: z.array(z.string()).default([]),
});
const ZodTaken = z.object({ name: z.string().refine(async (name) => name !== 'taken', { message: 'name is taken' }) });
const ValibotUser = v.object({
  name: v.pipe(v.string(), v.minLength(1), v.transform((name) => name.toUpperCase())),
  age: v.pipe(v.number(), v.integer()),
});

@Controller('/validate')
class ValidationController {
  @Post('/zod', { body: ZodUser })
  zod(ctx: HttpContext<{ name: string; age: number; tags: string[] }>) {
    bodiesSeen.push(ctx.body);
    return { received: ctx.body, nameIsUpper: ctx.body.name === ctx.body.name.toUpperCase() };
  }

  @Post('/zod-async', { body: ZodTaken })
  zodAsync(ctx: HttpContext<z.output<typeof ZodTaken>>) { return { name: ctx.body.name }; }

  @Post('/valibot', { body: ValibotUser })
  valibot(ctx: HttpContext<v.InferOutput<typeof ValibotUser>>) {
    bodiesSeen.push(ctx.body);
    return { received: ctx.body };
  }
}

@Module({ controllers: [ResponsesController, ContextController, RoutingController, ValidationController], providers: [Greeter] })
class MainModule {}

describe('toni HTTP (NodeHttpAdapter)', { timeout: 20_000 }, () => {
  describe('responses', () => {
    const apps: ToniApplication[] = [];
    let main: Served;
    before(async () => {
      main = await serve(MainModule, {}, apps);
    });
    after(async () => {
      await Promise.all(apps.map((app) => app.close()));
    });

    it('answers 200 with the JSON of a returned value and an exact content-length', async () => {
      const response = await fetch(`${main.url}/api/json`);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8');
      const text = await response.text();
      assert.equal(response.headers.get('content-length'), String(Buffer.byteLength(text)));
      assert.deepEqual(JSON.parse(text), { ok: true, list: [1, 2, 3], text: 'héllo ✓' });
    });

    it('answers 200 with JSON for null, strings and async values', async () => {
      const nullResponse = await fetch(`${main.url}/api/null`);
      assert.equal(nullResponse.status, 200);
      assert.equal(await nullResponse.text(), 'null');
      const stringResponse = await fetch(`${main.url}/api/string`);
      assert.equal(stringResponse.status, 200);
      assert.equal(await stringResponse.text(), '"plain"');
      const asyncResponse = await fetch(`${main.url}/api/async-value`);
      assert.deepEqual(await asyncResponse.json(), { later: true });
    });

    it('answers 204 with no body when the handler returns nothing (sync and async)', async () => {
      for (const path of ['/api/nothing', '/api/async-nothing']) {
        const response = await fetch(`${main.url}${path}`);
        assert.equal(response.status, 204, path);
        assert.equal(await response.text(), '');
        assert.equal(response.headers.get('content-type'), null);
      }
    });

    it('lets a controller use a provider injected with inject()', async () => {
      const response = await fetch(`${main.url}/api/greet/Ada%20Lovelace`);
      assert.deepEqual(await response.json(), { greeting: 'Hello, Ada Lovelace!' });
    });

    describe('HttpResponse builder', () => {
      it('created() with a header and a JSON body', async () => {
        const response = await fetch(`${main.url}/api/builder/created`);
        assert.equal(response.status, 201);
        assert.equal(response.headers.get('location'), '/things/1');
        assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8');
        assert.deepEqual(await response.json(), { id: 1 });
      });

      it('a builder returned without build() is sent as built (sync and async)', async () => {
        const response = await fetch(`${main.url}/api/builder/unbuilt`);
        assert.equal(response.status, 200);
        assert.equal(response.headers.get('x-unbuilt'), 'yes');
        assert.deepEqual(await response.json(), { built: false });
        const accepted = await fetch(`${main.url}/api/builder/async-unbuilt`);
        assert.equal(accepted.status, 202);
        assert.equal(accepted.headers.get('content-type'), 'text/plain; charset=utf-8');
        assert.equal(await accepted.text(), 'queued');
      });

      it('noContent() answers 204 with its headers and no body', async () => {
        const response = await fetch(`${main.url}/api/builder/no-content`);
        assert.equal(response.status, 204);
        assert.equal(response.headers.get('x-reason'), 'done');
        assert.equal(await response.text(), '');
      });

      it('badRequest() and notFound() carry the handler\'s own body', async () => {
        const bad = await fetch(`${main.url}/api/builder/bad-request`);
        assert.equal(bad.status, 400);
        assert.deepEqual(await bad.json(), { reason: 'nope' });
        const missing = await fetch(`${main.url}/api/builder/not-found`);
        assert.equal(missing.status, 404);
        assert.equal(missing.headers.get('content-type'), 'text/plain; charset=utf-8');
        assert.equal(await missing.text(), 'gone');
      });

      it('status(n) with header() and text()', async () => {
        const response = await fetch(`${main.url}/api/builder/teapot`);
        assert.equal(response.status, 418);
        assert.equal(response.headers.get('x-count'), '3');
        assert.equal(await response.text(), 'short and stout');
      });

      it('ok().build() answers 200 with an empty body', async () => {
        const response = await fetch(`${main.url}/api/builder/empty`);
        assert.equal(response.status, 200);
        assert.equal(await response.text(), '');
      });

      it('keeps a content-type set before json(), sends bytes, and the last header value wins', async () => {
        const custom = await fetch(`${main.url}/api/builder/custom-type`);
        assert.equal(custom.headers.get('content-type'), 'application/vnd.toni+json');
        assert.deepEqual(await custom.json(), { a: 1 });
        const bytes = await fetch(`${main.url}/api/builder/bytes`);
        assert.equal(bytes.headers.get('content-type'), 'application/octet-stream');
        assert.deepEqual(new Uint8Array(await bytes.arrayBuffer()), new Uint8Array([0, 1, 2, 255]));
        const last = await fetch(`${main.url}/api/builder/last-header-wins`);
        assert.equal(last.headers.get('x-v'), 'two');
      });
    });

    describe('errors', () => {
      it('404 for an unknown route, as JSON { statusCode, message, error }', async () => {
        const response = await fetch(`${main.url}/no/such/route?x=1`);
        const body = await expectError(response, 404, 'Not Found');
        assert.deepEqual(body, { statusCode: 404, message: 'Cannot GET /no/such/route', error: 'Not Found' });
      });

      it('405 for a known path with another method, with an Allow header', async () => {
        const response = await fetch(`${main.url}/routes/only-get`, { method: 'POST' });
        await expectError(response, 405, 'Method Not Allowed');
        assert.deepEqual(response.headers.get('allow')?.split(', ').sort(), ['GET', 'HEAD']);
        const put = await fetch(`${main.url}/routes/multi`, { method: 'PUT' });
        await expectError(put, 405, 'Method Not Allowed');
        assert.deepEqual(put.headers.get('allow')?.split(', ').sort(), ['DELETE', 'GET', 'HEAD']);
        const get = await fetch(`${main.url}/routes/only-post`);
        await expectError(get, 405, 'Method Not Allowed');
        assert.equal(get.headers.get('allow'), 'POST');
        const options = await fetch(`${main.url}/routes/only-get`, { method: 'OPTIONS' });
        await expectError(options, 405, 'Method Not Allowed');
        assert.deepEqual(options.headers.get('allow')?.split(', ').sort(), ['GET', 'HEAD']);
      });

      it('405 lists the methods of both a static and a parameter route matching the path', async () => {
        const response = await fetch(`${main.url}/routes/users/me`, { method: 'PUT' });
        await expectError(response, 405, 'Method Not Allowed');
        assert.deepEqual(response.headers.get('allow')?.split(', ').sort(), ['DELETE', 'GET', 'HEAD']);
        // The static route has no DELETE, so the parameter route serves it.
        const deleted = await fetch(`${main.url}/routes/users/me`, { method: 'DELETE' });
        assert.deepEqual(await deleted.json(), { route: 'delete-user', id: 'me' });
      });

      it('500 for a synchronous throw: logged with the error, nothing leaked', async () => {
        const before = main.logger.errors().length;
        const response = await fetch(`${main.url}/api/errors/sync`);
        const text = await response.text();
        assert.equal(response.status, 500);
        assert.deepEqual(JSON.parse(text), { statusCode: 500, message: 'Internal Server Error', error: 'Internal Server Error' });
        assert.doesNotMatch(text, /hunter2|at |\.ts/);
        const logged = main.logger.errors().slice(before);
        assert.equal(logged.length, 1);
        assert.equal(logged[0]?.details['err'], thrown.sync);
        assert.match(logged[0]?.message ?? '', /ResponsesController\.syncError/);
      });

      it('500 for an async rejection: logged with the error, nothing leaked', async () => {
        const before = main.logger.errors().length;
        const response = await fetch(`${main.url}/api/errors/async`);
        const text = await response.text();
        assert.equal(response.status, 500);
        assert.deepEqual(JSON.parse(text), { statusCode: 500, message: 'Internal Server Error', error: 'Internal Server Error' });
        assert.doesNotMatch(text, /s3cr3t|at /);
        const logged = main.logger.errors().slice(before);
        assert.equal(logged.length, 1);
        assert.equal(logged[0]?.details['err'], thrown.async);
      });

      it('500 for a thrown non-Error value, logged', async () => {
        const before = main.logger.errors().length;
        const response = await fetch(`${main.url}/api/errors/non-error`);
        const text = await response.text();
        assert.equal(response.status, 500);
        assert.doesNotMatch(text, /secret/);
        assert.equal(main.logger.errors().slice(before)[0]?.details['err'], 'a plain string with a secret');
      });

      it('HttpException(status, message) is answered as given and not logged as an error', async () => {
        const before = main.logger.errors().length;
        const conflict = await fetch(`${main.url}/api/errors/http`);
        assert.deepEqual(await expectError(conflict, 409, 'Conflict'), { statusCode: 409, message: 'Name already taken', error: 'Conflict' });
        const unauthorized = await fetch(`${main.url}/api/errors/http-async`);
        assert.deepEqual(await expectError(unauthorized, 401, 'Unauthorized'), { statusCode: 401, message: 'Who are you?', error: 'Unauthorized' });
        const teapot = await fetch(`${main.url}/api/errors/http-teapot`);
        assert.equal(teapot.status, 418);
        assert.equal(((await teapot.json()) as { message: string }).message, 'I am a teapot');
        const forbidden = await fetch(`${main.url}/api/errors/http-default`);
        assert.deepEqual(await expectError(forbidden, 403, 'Forbidden'), { statusCode: 403, message: 'Forbidden', error: 'Forbidden' });
        assert.equal(main.logger.errors().length, before);
      });

      it('HttpException details are added to the body, but cannot replace statusCode/message/error', async () => {
        const response = await fetch(`${main.url}/api/errors/http-details`);
        const body = await expectError(response, 422, 'Unprocessable Content');
        assert.deepEqual(body, { statusCode: 422, message: 'Invalid order', error: 'Unprocessable Content', field: 'quantity' });
        assert.doesNotMatch(JSON.stringify(body), /hidden cause/);
      });

      it('500 for a return value that is not JSON-serialisable (BigInt, function), logged', async () => {
        for (const path of ['/api/errors/bigint', '/api/errors/function', '/api/errors/builder-bigint', '/api/errors/bad-status']) {
          const before = main.logger.errors().length;
          const response = await fetch(`${main.url}${path}`);
          assert.deepEqual(await expectError(response, 500, 'Internal Server Error'), {
            statusCode: 500,
            message: 'Internal Server Error',
            error: 'Internal Server Error',
          }, path);
          assert.equal(main.logger.errors().length, before + 1, path);
        }
      });

      it('500 for a 1xx status, which cannot end a response (builder and HttpException)', async () => {
        for (const path of ['/api/errors/interim-status', '/api/errors/interim-exception']) {
          const before = main.logger.errors().length;
          const response = await fetch(`${main.url}${path}`);
          await expectError(response, 500, 'Internal Server Error');
          const logged = main.logger.errors().slice(before);
          assert.equal(logged.length, 1, path);
          assert.ok(logged[0]?.details['err'] instanceof RangeError, path);
        }
      });

      it('400 for malformed JSON and for invalid UTF-8', async () => {
        const malformed = await postJson(`${main.url}/ctx/body`, '{"message": ');
        const body = await expectError(malformed, 400, 'Bad Request');
        assert.match(body['message'] as string, /^Malformed JSON body/);
        const latin1 = await fetch(`${main.url}/ctx/body`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: new Uint8Array([0x22, 0xe9, 0x22]) });
        await expectError(latin1, 400, 'Bad Request');
      });

      it('415 for a body that is not JSON, or has no content-type', async () => {
        const text = await fetch(`${main.url}/ctx/body`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
        const body = await expectError(text, 415, 'Unsupported Media Type');
        assert.match(body['message'] as string, /text\/plain/);
        const form = await fetch(`${main.url}/ctx/body`, { method: 'POST', body: new URLSearchParams({ a: '1' }) });
        await expectError(form, 415, 'Unsupported Media Type');
        const port = main.port;
        const none = await rawRequest(port, ['POST /ctx/body HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}']);
        assert.equal(none.status, 415);
        // The unread body must not be parsed as the next request on this connection.
        assert.equal(none.headers.get('connection'), 'close');
        assert.equal((JSON.parse(none.body) as { statusCode: number }).statusCode, 415);
      });

      it('400 for a malformed percent-encoding in a path parameter', async () => {
        const response = await fetch(`${main.url}/routes/users/%E0%A4%A`);
        await expectError(response, 400, 'Bad Request');
      });

      it('a malformed request line is answered 400 with a JSON error and the server keeps serving', async () => {
        const response = await rawRequest(main.port, ['NOT AN HTTP REQUEST\r\n\r\n']);
        assert.equal(response.status, 400);
        assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
        const body = JSON.parse(response.body) as { statusCode: number; error: string; message: string };
        assert.equal(body.statusCode, 400);
        assert.equal(body.error, 'Bad Request');
        assert.match(body.message, /Malformed HTTP request/);
        const after = await fetch(`${main.url}/api/json`);
        assert.equal(after.status, 200);
      });

      it('headers larger than node accepts are answered 431 with a JSON error', async () => {
        const response = await rawRequest(main.port, [`GET /api/json HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`]);
        assert.equal(response.status, 431);
        assert.equal((JSON.parse(response.body) as { statusCode: number }).statusCode, 431);
      });

      it('a header value the server cannot send is a logged 500, and the server keeps serving', async () => {
        @Controller()
        class BadHeaderController {
          @Get('/bad-header') badHeader() { return HttpResponse.ok().header('x-bad', 'a\r\nInjected: yes').text('hi').build(); }
          @Get('/bad-header-name') badHeaderName() { return HttpResponse.ok().header('bad name', 'x').text('hi'); }
          @Get('/fine') fine() { return 'fine'; }
        }
        const { url, logger } = await serve(controllerModule(BadHeaderController));
        for (const path of ['/bad-header', '/bad-header-name']) {
          const response = await fetch(`${url}${path}`);
          await expectError(response, 500, 'Internal Server Error');
          assert.equal(response.headers.get('injected'), null);
        }
        assert.equal(logger.errors().length, 2);
        assert.equal((await fetch(`${url}/fine`)).status, 200);
      });
    });

    describe('prototype pollution', () => {
      const poisoned = [
        '{"__proto__": {"polluted": true}}',
        '{"constructor": {"prototype": {"polluted": true}}}',
        '{"nested": [{"deep": {"__proto__": {"polluted": true}}}]}',
        '{"\\u005f_proto__": {"polluted": true}}',
        '{"constructor": {"\\u0070rototype": {"polluted": true}}}',
        '{"\\u0063onstructor": {"prototype": {"polluted": true}}}',
      ];
      for (const body of poisoned) {
        it(`refuses ${body} with 400 and never calls the handler`, async () => {
          const seen = bodiesSeen.length;
          const response = await postJson(`${main.url}/ctx/body`, body);
          await expectError(response, 400, 'Bad Request');
          assert.equal(bodiesSeen.length, seen);
          assert.equal(isPolluted(), false);
        });
      }

      it('refuses a poisoned body on a validated route too', async () => {
        const response = await postJson(`${main.url}/validate/zod`, '{"name": "a", "age": 1, "__proto__": {"polluted": true}}');
        await expectError(response, 400, 'Bad Request');
        assert.equal(isPolluted(), false);
      });

      it('accepts harmless keys named like the dangerous ones', async () => {
        const response = await postJson(`${main.url}/ctx/body`, '{"constructor": "a string", "proto": {"x": 1}, "text": "__proto__"}');
        assert.equal(response.status, 200);
        assert.deepEqual(await response.json(), { body: { constructor: 'a string', proto: { x: 1 }, text: '__proto__' }, type: 'object' });
      });
    });

    describe('request context', () => {
      it('passes the parsed JSON body with every body method', async () => {
        const posted = await postJson(`${main.url}/ctx/body`, '{"message":"hi","n":[1,2]}');
        assert.deepEqual(await posted.json(), { body: { message: 'hi', n: [1, 2] }, type: 'object' });
        for (const method of ['PUT', 'PATCH', 'DELETE']) {
          const response = await postJson(`${main.url}/ctx/body`, '{"m":1}', { method });
          assert.deepEqual(await response.json(), { method, body: { m: 1 } }, method);
        }
      });

      it('accepts application/*+json and a charset parameter', async () => {
        for (const type of ['application/json; charset=utf-8', 'Application/JSON', 'application/merge-patch+json']) {
          const response = await fetch(`${main.url}/ctx/body`, { method: 'POST', headers: { 'content-type': type }, body: '[true]' });
          assert.equal(response.status, 200, type);
          assert.deepEqual(await response.json(), { body: [true], type: 'object' });
        }
      });

      it('gives body undefined without a body', async () => {
        const response = await fetch(`${main.url}/ctx/body`, { method: 'POST' });
        assert.deepEqual(await response.json(), { type: 'undefined' });
      });

      it('reads a chunked body without content-length', async () => {
        const response = await rawRequest(main.port, [
          'POST /ctx/body HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
          chunk('{"parts":'),
          chunk('[1,2,3]}'),
          '0\r\n\r\n',
        ]);
        assert.equal(response.status, 200);
        assert.deepEqual(JSON.parse(response.body), { body: { parts: [1, 2, 3] }, type: 'object' });
      });

      it('percent-decodes path parameters, with several parameters in one path', async () => {
        const response = await fetch(`${main.url}/ctx/params/my%20org/repos/caf%C3%A9%2Fbar`);
        assert.deepEqual(await response.json(), { params: { org: 'my org', repo: 'café/bar' } });
      });

      it('exposes the query as percent-decoded URLSearchParams', async () => {
        const response = await fetch(`${main.url}/ctx/query?q=caf%C3%A9%20au%20lait&tag=a&tag=b%26c&plus=a+b`);
        assert.deepEqual(await response.json(), {
          isSearchParams: true,
          q: 'café au lait',
          tags: ['a', 'b&c'],
          plus: 'a b',
          missing: null,
        });
        const empty = await fetch(`${main.url}/ctx/query`);
        assert.deepEqual(await empty.json(), { isSearchParams: true, q: null, tags: [], plus: null, missing: null });
      });

      it('exposes headers as WHATWG Headers with a case-insensitive get', async () => {
        const response = await fetch(`${main.url}/ctx/headers`, { headers: { 'X-Custom-Header': 'Value 1' } });
        assert.deepEqual(await response.json(), { isHeaders: true, custom: 'Value 1', lower: 'Value 1', absent: null });
      });

      it('exposes the raw request as the node IncomingMessage', async () => {
        const response = await fetch(`${main.url}/ctx/raw?x=1`, { headers: { 'x-raw': 'yes' } });
        assert.deepEqual(await response.json(), { isIncomingMessage: true, url: '/ctx/raw?x=1', method: 'GET', header: 'yes' });
      });

      it('exposes method, path, url and remoteAddress', async () => {
        const response = await fetch(`${main.url}/ctx/info?a=b`);
        assert.deepEqual(await response.json(), { method: 'GET', path: '/ctx/info', url: '/ctx/info?a=b', remoteAddress: '127.0.0.1' });
      });
    });

    describe('routing', () => {
      it('a static route wins over a parameter route', async () => {
        assert.deepEqual(await (await fetch(`${main.url}/routes/users/me`)).json(), { route: 'me' });
        assert.deepEqual(await (await fetch(`${main.url}/routes/users/42`)).json(), { route: 'user', id: '42' });
        assert.deepEqual(await (await fetch(`${main.url}/routes/users/42/posts/7`)).json(), { route: 'post', params: { id: '42', postId: '7' } });
      });

      it('a wildcard matches the rest of the path, percent-decoded', async () => {
        const response = await fetch(`${main.url}/routes/files/docs/2024/r%C3%A9sum%C3%A9.pdf`);
        assert.deepEqual(await response.json(), { route: 'files', rest: 'docs/2024/résumé.pdf' });
      });

      it('a wildcard also matches its bare prefix, with an empty rest', async () => {
        assert.deepEqual(await (await fetch(`${main.url}/routes/files`)).json(), { route: 'files', rest: '' });
        assert.deepEqual(await (await fetch(`${main.url}/routes/files/`)).json(), { route: 'files', rest: '' });
      });

      it('a route for another method on a more specific path does not hide a matching route', async () => {
        const post = await fetch(`${main.url}/routes/mixed/b/c`, { method: 'POST' });
        assert.equal(post.status, 200);
        assert.deepEqual(await post.json(), { route: 'post :x/:y', params: { x: 'b', y: 'c' } });
        const get = await fetch(`${main.url}/routes/mixed/b/c`);
        assert.deepEqual(await get.json(), { route: 'get b/:y', params: { y: 'c' } });
        const wrongMethod = await fetch(`${main.url}/routes/mixed/b/c`, { method: 'PUT' });
        await expectError(wrongMethod, 405, 'Method Not Allowed');
        assert.deepEqual(wrongMethod.headers.get('allow')?.split(', ').sort(), ['GET', 'HEAD', 'POST']);
        const getElsewhere = await fetch(`${main.url}/routes/mixed/z/c`);
        await expectError(getElsewhere, 405, 'Method Not Allowed');
        assert.equal(getElsewhere.headers.get('allow'), 'POST');
      });

      it('ignores a trailing slash', async () => {
        assert.deepEqual(await (await fetch(`${main.url}/routes/items/`)).json(), { route: 'items' });
        assert.deepEqual(await (await fetch(`${main.url}/routes/users/42/`)).json(), { route: 'user', id: '42' });
        assert.deepEqual(await (await fetch(`${main.url}/routes/users/me/`)).json(), { route: 'me' });
      });

      it('does not match a parameter against an empty segment', async () => {
        const response = await fetch(`${main.url}/routes/users//posts/7`);
        await expectError(response, 404, 'Not Found');
      });

      it('serves HEAD with the GET route: same status and headers, no body', async () => {
        const get = await fetch(`${main.url}/api/json`);
        const head = await fetch(`${main.url}/api/json`, { method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get('content-type'), get.headers.get('content-type'));
        assert.equal(head.headers.get('content-length'), get.headers.get('content-length'));
        assert.equal(await head.text(), '');
        await get.text();
        const missing = await fetch(`${main.url}/nope`, { method: 'HEAD' });
        assert.equal(missing.status, 404);
      });
    });

    describe('body validation (Standard Schema)', () => {
      it('zod: the handler receives the parsed and transformed output', async () => {
        const seen = bodiesSeen.length;
        const response = await postJson(`${main.url}/validate/zod`, '{"name":"ada","age":36,"extra":"dropped"}');
        assert.equal(response.status, 200);
        assert.deepEqual(await response.json(), { received: { name: 'ADA', age: 36, tags: [] }, nameIsUpper: true });
        assert.deepEqual(bodiesSeen.slice(seen), [{ name: 'ADA', age: 36, tags: [] }]);
      });

      it('zod: 400 with issues (message and path) for an invalid body', async () => {
        const seen = bodiesSeen.length;
        const response = await postJson(`${main.url}/validate/zod`, '{"name":"","age":1.5,"tags":[1]}');
        const body = await expectError(response, 400, 'Bad Request');
        assert.equal(body['message'], 'Validation failed');
        const issues = body['issues'] as { message: string; path?: (string | number)[] }[];
        assert.ok(Array.isArray(issues));
        assert.deepEqual(issues.map((issue) => issue.path).sort(), [['age'], ['name'], ['tags', 0]].sort());
        for (const issue of issues) assert.equal(typeof issue.message, 'string');
        assert.equal(bodiesSeen.length, seen);
      });

      it('zod: a missing body fails validation with 400', async () => {
        const response = await fetch(`${main.url}/validate/zod`, { method: 'POST' });
        const body = await expectError(response, 400, 'Bad Request');
        assert.ok(Array.isArray(body['issues']) && body['issues'].length > 0);
      });

      it('zod: an async refinement is awaited', async () => {
        const ok = await postJson(`${main.url}/validate/zod-async`, '{"name":"free"}');
        assert.deepEqual(await ok.json(), { name: 'free' });
        const taken = await postJson(`${main.url}/validate/zod-async`, '{"name":"taken"}');
        const body = await expectError(taken, 400, 'Bad Request');
        assert.deepEqual(body['issues'], [{ message: 'name is taken', path: ['name'] }]);
      });

      it('valibot: the handler receives the parsed and transformed output', async () => {
        const response = await postJson(`${main.url}/validate/valibot`, '{"name":"grace","age":85}');
        assert.equal(response.status, 200);
        assert.deepEqual(await response.json(), { received: { name: 'GRACE', age: 85 } });
      });

      it('valibot: 400 with issues for an invalid body', async () => {
        const seen = bodiesSeen.length;
        const response = await postJson(`${main.url}/validate/valibot`, '{"name":"grace","age":"old"}');
        const body = await expectError(response, 400, 'Bad Request');
        const issues = body['issues'] as { message: string; path?: (string | number)[] }[];
        assert.equal(issues.length, 1);
        assert.deepEqual(issues[0]?.path, ['age']);
        assert.equal(typeof issues[0]?.message, 'string');
        assert.equal(bodiesSeen.length, seen);
      });

      it('the decorator type-checks the handler against the schema output', () => {
        const Schema = z.object({ count: z.number() });
        class Typed {
          // @ts-expect-error the handler's body type does not match the schema's output
          @Post('/typed', { body: Schema }) wrong(ctx: HttpContext<{ count: string }>) { return ctx.body.count; }
          @Post('/typed-ok', { body: Schema }) right(ctx: HttpContext<{ count: number }>) { return ctx.body.count; }
        }
        assert.equal(typeof Typed, 'function');
      });
    });
  });

  describe('body limit', () => {
    @Controller('/limits')
    class LimitsController {
      @Post('/default') byDefault(ctx: HttpContext<unknown>) { return { length: JSON.stringify(ctx.body).length }; }
      @Post('/tiny', { bodyLimit: 16 }) tiny(ctx: HttpContext<unknown>) { return { body: ctx.body }; }
      @Post('/big', { bodyLimit: 4096 }) big(ctx: HttpContext<unknown>) { return { length: JSON.stringify(ctx.body).length }; }
      @Get('/ping') ping() { return 'pong'; }
    }
    const limits = controllerModule(LimitsController);
    const jsonOfLength = (length: number) => `"${'x'.repeat(length - 2)}"`;

    it('accepts a body of exactly the app-level bodyLimit', async () => {
      const { url } = await serve(limits, { bodyLimit: 1000 });
      const response = await postJson(`${url}/limits/default`, jsonOfLength(1000));
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { length: 1000 });
    });

    it('413 when content-length declares more than the app-level limit, then keeps serving', async () => {
      const { url, port } = await serve(limits, { bodyLimit: 1000 });
      // Only the headers are sent: the server must answer from the declared length alone.
      const response = await rawRequest(port, ['POST /limits/default HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1001\r\n\r\n']);
      assert.equal(response.status, 413);
      assert.equal(response.headers.get('connection'), 'close');
      assert.deepEqual(JSON.parse(response.body), { statusCode: 413, message: 'Request body is larger than the limit of 1000 bytes', error: 'Content Too Large' });
      assert.equal(await (await fetch(`${url}/limits/ping`)).text(), '"pong"');
    });

    it('413 when a chunked body grows past the app-level limit, then keeps serving', async () => {
      const { url, port } = await serve(limits, { bodyLimit: 1000 });
      const response = await rawRequest(port, [
        'POST /limits/default HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
        chunk(`"${'a'.repeat(600)}`),
        chunk(`${'b'.repeat(600)}"`),
      ]);
      assert.equal(response.status, 413);
      assert.equal((JSON.parse(response.body) as { statusCode: number }).statusCode, 413);
      assert.equal(await (await fetch(`${url}/limits/ping`)).text(), '"pong"');
    });

    it('413 from fetch for a body over the default 1 MiB limit', async () => {
      const { url } = await serve(limits);
      const response = await postJson(`${url}/limits/default`, jsonOfLength(1024 * 1024 + 1));
      await expectError(response, 413, 'Content Too Large');
      const atLimit = await postJson(`${url}/limits/default`, jsonOfLength(1024 * 1024));
      assert.equal(atLimit.status, 200);
    });

    it('a per-route bodyLimit overrides the app-level one, in both directions', async () => {
      const { url, port } = await serve(limits, { bodyLimit: 1000 });
      const small = await postJson(`${url}/limits/tiny`, jsonOfLength(16));
      assert.deepEqual(await small.json(), { body: 'x'.repeat(14) });
      const tooBig = await rawRequest(port, ['POST /limits/tiny HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n']);
      assert.equal(tooBig.status, 413);
      assert.match(tooBig.body, /limit of 16 bytes/);
      const chunked = await rawRequest(port, [
        'POST /limits/tiny HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
        chunk('"0123456789'),
        chunk('0123456789"'),
      ]);
      assert.equal(chunked.status, 413);
      const big = await postJson(`${url}/limits/big`, jsonOfLength(4096));
      assert.deepEqual(await big.json(), { length: 4096 });
      const tooBigForBig = await rawRequest(port, ['POST /limits/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4097\r\n\r\n']);
      assert.equal(tooBigForBig.status, 413);
      assert.equal((await fetch(`${url}/limits/ping`)).status, 200);
    });

    it('bodyLimit 0 refuses any body', async () => {
      const { url } = await serve(limits, { bodyLimit: 0 });
      const response = await postJson(`${url}/limits/default`, '1');
      await expectError(response, 413, 'Content Too Large');
    });
  });

  describe('path joining', () => {
    const prefixes = [undefined, '', '/', 'events', '/events', 'events/', '/events/'] as const;
    const paths = [undefined, '', '/', 'x', '/x', 'x/', '/x/'] as const;
    for (const prefix of prefixes) {
      for (const path of paths) {
        const base = prefix === undefined || prefix.replace(/\//g, '') === '' ? '' : '/events';
        const tail = path === undefined || path.replace(/\//g, '') === '' ? '' : '/x';
        const expected = `${base}${tail}` || '/';
        const label = `@Controller(${prefix === undefined ? '' : JSON.stringify(prefix)}) + @Get(${path === undefined ? '' : JSON.stringify(path)}) serves ${expected}`;
        it(label, async () => {
          const controller = prefix === undefined ? Controller() : Controller(prefix);
          const get = path === undefined ? Get() : Get(path);
          @controller
          class JoinController {
            @get handler(ctx: HttpContext) { return { path: ctx.path }; }
          }
          const { url } = await serve(controllerModule(JoinController));
          const response = await fetch(`${url}${expected}`);
          assert.equal(response.status, 200);
          assert.deepEqual(await response.json(), { path: expected });
          const withSlash = await fetch(`${url}${expected === '/' ? '' : expected}/`);
          assert.equal(withSlash.status, 200);
          await withSlash.text();
          for (const wrong of ['/eventsx', '/events/events/x', '//x', '/x/x'].filter((candidate) => candidate !== expected)) {
            assert.equal((await fetch(`${url}${wrong}`)).status, 404, wrong);
          }
        });
      }
    }
  });

  describe('startup errors', () => {
    async function createFails(module: Class, options: ToniApplicationOptions, code: string): Promise<ToniError> {
      let caught: unknown;
      try {
        const app = await ToniFactory.create(module, new NodeHttpAdapter(), { logger: false, ...options });
        perTestApps.push(app);
      } catch (error) {
        caught = error;
      }
      assert.ok(caught instanceof ToniError, `expected a ToniError, got ${String(caught)}`);
      assert.equal(caught.code, code);
      return caught;
    }

    it('two handlers for one method and path: TONI_ERR_DUPLICATE_ROUTE', async () => {
      @Controller('/events/')
      class First { @Get('x') a() { return 1; } }
      @Controller('events')
      class Second { @Get('/x/') b() { return 2; } }
      const error = await createFails(controllerModule(First, Second), {}, 'TONI_ERR_DUPLICATE_ROUTE');
      assert.match(error.message, /GET \/events\/x/);

      @Controller()
      class SameClass {
        @Get('/users/:id') one() { return 1; }
        @Get('users/:id/') two() { return 2; }
      }
      await createFails(controllerModule(SameClass), {}, 'TONI_ERR_DUPLICATE_ROUTE');
    });

    it('the same path under different methods is not a duplicate', async () => {
      @Controller('/same')
      class Methods {
        @Get() get() { return 'get'; }
        @Post() post() { return 'post'; }
      }
      const { url } = await serve(controllerModule(Methods));
      assert.equal(await (await fetch(`${url}/same`)).text(), '"get"');
      assert.equal(await (await fetch(`${url}/same`, { method: 'POST' })).text(), '"post"');
    });

    it('a controller class without @Controller: TONI_ERR_INVALID_CONTROLLER', async () => {
      class NotAController { @Get('/x') x() { return 1; } }
      const error = await createFails(controllerModule(NotAController), {}, 'TONI_ERR_INVALID_CONTROLLER');
      assert.match(error.message, /NotAController/);
      assert.match(error.message, /@Controller/);
    });

    it('an invalid bodyLimit: TONI_ERR_INVALID_OPTION', async () => {
      @Controller()
      class Fine { @Get() get() { return 1; } }
      for (const bodyLimit of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        const error = await createFails(controllerModule(Fine), { bodyLimit }, 'TONI_ERR_INVALID_OPTION');
        assert.match(error.message, /bodyLimit/);
      }
      @Controller()
      class BadRoute { @Post('/x', { bodyLimit: -5 }) post() { return 1; } }
      const error = await createFails(controllerModule(BadRoute), {}, 'TONI_ERR_INVALID_OPTION');
      assert.match(error.message, /BadRoute\.post/);
    });
  });

  describe('framing: one content-length, never a second framing', () => {
    @Controller('/framing')
    class FramingController {
      @Get('/chunked') chunked() { return HttpResponse.ok().header('transfer-encoding', 'chunked').text('hello world').build(); }
      @Get('/agrees') agrees() { return HttpResponse.ok().header('Content-Length', 11).text('hello world').build(); }
      @Get('/agrees-bytes') agreesBytes() { return HttpResponse.ok().bytes(new Uint8Array(3)).header('content-length', '3'); }
      @Get('/disagrees') disagrees() { return HttpResponse.ok().header('content-length', 99).text('hello world').build(); }
      @Get('/disagrees-unbuilt') disagreesUnbuilt() { return HttpResponse.ok().text('héllo').header('content-length', 5); }
      @Get('/empty') empty() { return HttpResponse.ok().build(); }
      @Get('/no-content') noContent() { return HttpResponse.noContent().build(); }
    }

    it('header() refuses hop-by-hop headers with a TypeError naming the header and why', () => {
      for (const name of ['Transfer-Encoding', 'connection', 'Keep-Alive', 'upgrade', 'proxy-connection', 'TE', 'trailer']) {
        assert.throws(
          () => HttpResponse.ok().header(name, 'x'),
          (error: unknown) => error instanceof TypeError && error.message.startsWith(`HttpResponse.header(): "${name}" cannot be set: `),
          name,
        );
      }
      assert.throws(() => HttpResponse.ok().header('transfer-encoding', 'chunked'), /two framings/);
      assert.throws(() => HttpResponse.ok().header('connection', 'close'), /toni keeps or closes connections itself/);
      assert.throws(() => HttpResponse.ok().header('content-length', 'ten'), /content-length must be a byte count, got "ten"; leave it out/);
      assert.throws(() => HttpResponse.ok().header('content-length', -1), /content-length must be a byte count/);
    });

    it('a handler setting transfer-encoding answers a logged 500 with one content-length and no transfer-encoding on the wire', async () => {
      const { port, logger } = await serve(controllerModule(FramingController));
      const response = await rawGet(port, '/framing/chunked');
      assert.equal(response.statusLine, 'HTTP/1.1 500 Internal Server Error');
      assert.deepEqual(linesNamed(response.headerLines, 'transfer-encoding'), []);
      assert.deepEqual(linesNamed(response.headerLines, 'content-length'), [`content-length: ${Buffer.byteLength(response.body)}`]);
      const logged = logger.errors();
      assert.equal(logged.length, 1);
      assert.match(String(logged[0]?.details['err']), /TypeError: HttpResponse\.header\(\): "transfer-encoding" cannot be set/);
    });

    it('a content-length set by hand is sent once when it agrees with the body, and is a logged 500 when it does not', async () => {
      const { port, logger } = await serve(controllerModule(FramingController));
      const agrees = await rawGet(port, '/framing/agrees');
      assert.equal(agrees.statusLine, 'HTTP/1.1 200 OK');
      assert.deepEqual(linesNamed(agrees.headerLines, 'content-length'), ['content-length: 11']);
      assert.deepEqual(linesNamed(agrees.headerLines, 'transfer-encoding'), []);
      assert.equal(agrees.body, 'hello world');
      const bytes = await rawGet(port, '/framing/agrees-bytes');
      assert.deepEqual(linesNamed(bytes.headerLines, 'content-length'), ['content-length: 3']);

      for (const [path, message] of [
        ['/framing/disagrees', /content-length 99 disagrees with the body, which is 11 bytes; leave content-length out/],
        ['/framing/disagrees-unbuilt', /content-length 5 disagrees with the body, which is 6 bytes/],
      ] as const) {
        const before = logger.errors().length;
        const response = await rawGet(port, path);
        assert.equal(response.statusLine, 'HTTP/1.1 500 Internal Server Error', path);
        assert.deepEqual(linesNamed(response.headerLines, 'content-length'), [`content-length: ${Buffer.byteLength(response.body)}`], path);
        const logged = logger.errors().slice(before);
        assert.equal(logged.length, 1, path);
        assert.match((logged[0]?.details['err'] as Error).message, message, path);
      }
    });

    it('an empty body is framed with content-length: 0, a 204 with no framing header at all', async () => {
      const { port } = await serve(controllerModule(FramingController));
      const empty = await rawGet(port, '/framing/empty');
      assert.equal(empty.statusLine, 'HTTP/1.1 200 OK');
      assert.deepEqual(linesNamed(empty.headerLines, 'content-length'), ['content-length: 0']);
      assert.deepEqual(linesNamed(empty.headerLines, 'transfer-encoding'), []);
      assert.equal(empty.body, '');
      const noContent = await rawGet(port, '/framing/no-content');
      assert.equal(noContent.statusLine, 'HTTP/1.1 204 No Content');
      assert.deepEqual([...linesNamed(noContent.headerLines, 'content-length'), ...linesNamed(noContent.headerLines, 'transfer-encoding')], []);
    });
  });

  describe('status codes', () => {
    @Controller('/status')
    class StatusController {
      @Get('/exception-200') exception200(): never { throw new HttpException(200, 'all good?'); }
      @Get('/teapot') teapot(): never { throw new HttpException(418); }
      @Get('/legal') legal(): never { throw new HttpException(451, 'Not here'); }
      @Get('/599') last() { return HttpResponse.status(599).text('the last one'); }
    }

    it('HttpException takes only an error status, 400 to 599: anything else is a RangeError that says so', () => {
      for (const status of [100, 200, 204, 302, 399, 600, 999, 1.5, Number.NaN]) {
        assert.throws(
          () => new HttpException(status, 'x'),
          (error: unknown) => error instanceof RangeError && error.message.startsWith(`HttpException status must be an error status, an integer from 400 to 599, got ${status}`),
          String(status),
        );
      }
      assert.throws(() => new HttpException(302), /to answer 302, return HttpResponse\.status\(302\) \(with \.header\('location', …\) for a redirect\)/);
      assert.throws(() => new HttpException(200), /to answer 200, return HttpResponse\.status\(200\)/);
      assert.equal(new HttpException(400).status, 400);
      assert.equal(new HttpException(599).status, 599);
    });

    it('a thrown HttpException(200) is a logged 500, never a 200 with an error body', async () => {
      const { url, logger } = await serve(controllerModule(StatusController));
      await expectError(await fetch(`${url}/status/exception-200`), 500, 'Internal Server Error');
      const logged = logger.errors();
      assert.equal(logged.length, 1);
      assert.ok(logged[0]?.details['err'] instanceof RangeError);
    });

    it('error texts and status lines are the IANA reason phrases (418 is "I\'m a Teapot")', async () => {
      const expected: Record<number, string> = {
        400: 'Bad Request', 407: 'Proxy Authentication Required', 413: 'Content Too Large', 414: 'URI Too Long',
        416: 'Range Not Satisfiable', 417: 'Expectation Failed', 418: "I'm a Teapot", 421: 'Misdirected Request',
        422: 'Unprocessable Content', 423: 'Locked', 424: 'Failed Dependency', 425: 'Too Early', 428: 'Precondition Required',
        451: 'Unavailable For Legal Reasons', 505: 'HTTP Version Not Supported', 507: 'Insufficient Storage',
        508: 'Loop Detected', 511: 'Network Authentication Required',
        // Unregistered codes get their class's name.
        499: 'Client Error', 599: 'Server Error',
      };
      for (const [status, text] of Object.entries(expected)) {
        assert.equal(new HttpException(Number(status)).toJSON()['error'], text, status);
      }
      const { port } = await serve(controllerModule(StatusController));
      const teapot = await rawGet(port, '/status/teapot');
      assert.equal(teapot.statusLine, "HTTP/1.1 418 I'm a Teapot");
      assert.deepEqual(JSON.parse(teapot.body), { statusCode: 418, message: "I'm a Teapot", error: "I'm a Teapot" });
      const legal = await rawGet(port, '/status/legal');
      assert.equal(legal.statusLine, 'HTTP/1.1 451 Unavailable For Legal Reasons');
      assert.deepEqual(JSON.parse(legal.body), { statusCode: 451, message: 'Not here', error: 'Unavailable For Legal Reasons' });
    });

    it('HttpResponse.status() takes a final status, 200 to 599; 1xx and 600 up are RangeErrors', async () => {
      for (const status of [100, 101, 199, 600, 999, 200.5]) {
        assert.throws(() => HttpResponse.status(status), (error: unknown) => error instanceof RangeError && /integer from 200 to 599/.test(error.message), String(status));
      }
      const { url } = await serve(controllerModule(StatusController));
      const response = await fetch(`${url}/status/599`);
      assert.equal(response.status, 599);
      assert.equal(await response.text(), 'the last one');
    });
  });

  describe('return values that are not plain JSON', () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    @Controller('/returns')
    class ReturnsController {
      @Get('/buffer') buffer() { return Buffer.from([0, 1, 2, 255]); }
      @Get('/view') view() { return backing.subarray(2, 5); }
      @Get('/array-buffer') arrayBuffer() { return new Uint8Array([7, 8]).buffer; }
      @Get('/uint16') uint16() { return new Uint16Array([1, 2]); }
      @Get('/async-buffer') async asyncBuffer() { return Buffer.from('bytes'); }
      @Get('/map') map() { return new Map([['a', 1]]); }
      @Get('/async-map') async asyncMap() { return new Map([['a', 1]]); }
      @Get('/set') set() { return new Set([1, 2]); }
      @Get('/error') error() { return new Error('returned, not thrown'); }
      @Get('/bigint') bigint() { return 10n; }
      @Get('/nested-bigint') nestedBigint() { return { total: 10n }; }
      @Get('/circular') circular() {
        const node: { name: string; self?: unknown } = { name: 'loop' };
        node.self = node;
        return node;
      }
      @Get('/json-map') jsonMap() { return HttpResponse.ok().json(new Map()); }
      @Get('/instance') instance() { return new Point(1, 2); }
      @Get('/null-prototype') nullPrototype() { return Object.assign(Object.create(null) as object, { bare: true }); }
    }
    class Point {
      constructor(readonly x: number, readonly y: number) {}
    }

    it('sends a returned Buffer, Uint8Array view, ArrayBuffer or other typed array as its bytes (application/octet-stream)', async () => {
      const { url } = await serve(controllerModule(ReturnsController));
      const expected: Record<string, number[]> = {
        '/returns/buffer': [0, 1, 2, 255],
        '/returns/view': [1, 2, 3],
        '/returns/array-buffer': [7, 8],
        '/returns/uint16': [...new Uint8Array(new Uint16Array([1, 2]).buffer)],
        '/returns/async-buffer': [...Buffer.from('bytes')],
      };
      for (const [path, bytes] of Object.entries(expected)) {
        const response = await fetch(`${url}${path}`);
        assert.equal(response.status, 200, path);
        assert.equal(response.headers.get('content-type'), 'application/octet-stream', path);
        assert.deepEqual([...new Uint8Array(await response.arrayBuffer())], bytes, path);
      }
    });

    it('a returned Map, Set or Error is a logged 500 that says what was returned and what to return instead, never {}', async () => {
      const { url, logger } = await serve(controllerModule(ReturnsController));
      const cases: Record<string, RegExp> = {
        '/returns/map': /^The return value could not be serialised: ReturnsController\.map returned a Map, which JSON\.stringify turns into \{\}: return an object or an array instead \(Object\.fromEntries\(map\) or \[\.\.\.map\]\)$/,
        '/returns/async-map': /ReturnsController\.asyncMap returned a Map, which JSON\.stringify turns into \{\}/,
        '/returns/set': /ReturnsController\.set returned a Set, which JSON\.stringify turns into \{\}: return an array instead \(\[\.\.\.set\]\)/,
        '/returns/error': /ReturnsController\.error returned an Error, which JSON\.stringify turns into \{\}: throw it instead/,
      };
      for (const [path, message] of Object.entries(cases)) {
        const before = logger.errors().length;
        const response = await fetch(`${url}${path}`);
        assert.deepEqual(await expectError(response, 500, 'Internal Server Error'), { statusCode: 500, message: 'Internal Server Error', error: 'Internal Server Error' }, path);
        const logged = logger.errors().slice(before);
        assert.equal(logged.length, 1, path);
        assert.match(logged[0]?.message ?? '', message, path);
        assert.ok(logged[0]?.details['err'] instanceof TypeError, path);
        assert.equal(logged[0]?.details['handler'], `ReturnsController.${path.split('/')[2]!.replace(/-(\w)/g, (_, letter: string) => letter.toUpperCase())}`, path);
      }
    });

    it('a BigInt or circular return value is a logged 500 that names the handler, the type and the cause', async () => {
      const { url, logger } = await serve(controllerModule(ReturnsController));
      const cases: Record<string, RegExp> = {
        '/returns/bigint': /ReturnsController\.bigint returned a BigInt, which JSON cannot represent: return it as a string \(String\(n\)\)/,
        '/returns/nested-bigint': /ReturnsController\.nestedBigint returned an object holding a BigInt, which JSON cannot represent \(JSON\.stringify: Do not know how to serialize a BigInt\): convert it to a string or a number/,
        '/returns/circular': /ReturnsController\.circular returned an object that refers to itself, which JSON cannot represent \(JSON\.stringify: Converting circular structure to JSON .*property 'self' closes the circle\): return a copy without the cycle/,
        '/returns/json-map': /HttpResponse\.json\(\) got a Map, which JSON\.stringify turns into \{\}: pass an object or an array instead/,
      };
      for (const [path, message] of Object.entries(cases)) {
        const before = logger.errors().length;
        await expectError(await fetch(`${url}${path}`), 500, 'Internal Server Error');
        const logged = logger.errors().slice(before);
        assert.equal(logged.length, 1, path);
        assert.match(`${logged[0]?.message} / ${(logged[0]?.details['err'] as Error).message}`, message, path);
      }
    });

    it('class instances and null-prototype objects are still sent as their JSON', async () => {
      const { url } = await serve(controllerModule(ReturnsController));
      assert.deepEqual(await (await fetch(`${url}/returns/instance`)).json(), { x: 1, y: 2 });
      assert.deepEqual(await (await fetch(`${url}/returns/null-prototype`)).json(), { bare: true });
    });

    it('HttpResponse.json() refuses what JSON cannot carry with a TypeError', () => {
      assert.throws(() => HttpResponse.ok().json(new Set()), /^TypeError: HttpResponse\.json\(\) got a Set, which JSON\.stringify turns into \{\}/);
      assert.throws(() => HttpResponse.ok().json({ n: 1n }), /HttpResponse\.json\(\) got an object holding a BigInt/);
      assert.throws(() => HttpResponse.ok().json(() => 1), /HttpResponse\.json\(\) got a function, which JSON\.stringify turns into nothing/);
    });
  });

  describe('listen errors', () => {
    const blockers: TcpServer[] = [];
    afterEach(async () => {
      await Promise.all(blockers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
    });

    it('a port in use (EADDRINUSE) says so and what to do, and the application can listen elsewhere after', async () => {
      const blocker = await listenTcp();
      blockers.push(blocker);
      const taken = (blocker.address() as AddressInfo).port;
      const app = await ToniFactory.create(controllerModule(), new NodeHttpAdapter(), { logger: false });
      perTestApps.push(app);
      await assert.rejects(app.listen(taken, '127.0.0.1'), (error: unknown) => {
        assert.ok(error instanceof ToniError);
        assert.equal(error.code, 'TONI_ERR_LISTEN_FAILED');
        assert.equal(
          error.message,
          `Cannot listen on 127.0.0.1:${taken}: port ${taken} on 127.0.0.1 is already in use, by another process or another server (EADDRINUSE): ` +
            'stop it, or pass another port to listen() (0 picks a free one).',
        );
        return true;
      });
      const url = await app.listen(0, '127.0.0.1');
      assert.notEqual(new URL(url).port, String(taken));
    });

    it('a gateway port in use (EADDRINUSE) says so and what to do', async () => {
      const blocker = await listenTcp();
      blockers.push(blocker);
      const taken = (blocker.address() as AddressInfo).port;
      @Injectable()
      class OwnPortGateway implements Gateway {
        readonly path = '/own';
        readonly port = taken;
        onMessage() {}
      }
      @Module({ providers: [OwnPortGateway] })
      class GatewayModule {}
      const app = await ToniFactory.create(GatewayModule, new NodeHttpAdapter(), { logger: false });
      perTestApps.push(app);
      app.useWebSocketAdapter(new WsAdapter());
      await assert.rejects(app.listen(0, '127.0.0.1'), (error: unknown) => {
        assert.ok(error instanceof ToniError);
        assert.equal(error.code, 'TONI_ERR_LISTEN_FAILED');
        assert.equal(
          error.message,
          `Cannot listen for gateways on 127.0.0.1:${taken}: port ${taken} on 127.0.0.1 is already in use, by another process or another server (EADDRINUSE): ` +
            'stop it, or give the gateway another port (readonly port = 0 picks a free one).',
        );
        return true;
      });
    });

    // A privileged port cannot be refused on demand (tests may run as root), so these messages are checked on the errno alone.
    it('EACCES, EADDRNOTAVAIL and unknown errors say what happened and what to do', () => {
      const errno = (code: string) => Object.assign(new Error(`listen ${code}`), { code });
      assert.equal(
        listenFailed(errno('EACCES'), 'http', '0.0.0.0', 80).message,
        'Cannot listen on 0.0.0.0:80: permission denied for port 80 (EACCES): ports below 1024 need elevated privileges on most systems; ' +
          'pass a port from 1024 up to listen() (0 picks a free one), or grant the privilege (CAP_NET_BIND_SERVICE on Linux).',
      );
      assert.match(listenFailed(errno('EACCES'), 'gateways', undefined, 443).message, /^Cannot listen for gateways on \(all interfaces\):443: permission denied .* give the gateway a port from 1024 up \(readonly port = 0 picks a free one\)/);
      assert.match(listenFailed(errno('EACCES'), 'http', '127.0.0.1', 8080).message, /permission denied for port 8080 on 127\.0\.0\.1 \(EACCES\): the system does not let this process use it; pass another port/);
      assert.match(listenFailed(errno('EADDRNOTAVAIL'), 'http', '192.0.2.1', 3000).message, /192\.0\.2\.1 is not an address of this machine \(EADDRNOTAVAIL\): pass one of its addresses/);
      assert.match(listenFailed(errno('ENOTFOUND'), 'http', 'no-such-host.invalid', 3000).message, /the host name no-such-host\.invalid does not resolve \(ENOTFOUND\)/);
      const unknown = listenFailed(errno('EWHATEVER'), 'http', '127.0.0.1', 3000);
      assert.equal(unknown.message, 'Cannot listen on 127.0.0.1:3000: EWHATEVER.');
      assert.equal(unknown.code, 'TONI_ERR_LISTEN_FAILED');
    });
  });

  describe('graceful close', () => {
    it('lets an in-flight request finish, refuses new connections, and resolves after', async () => {
      const entered = deferred();
      const release = deferred();
      @Controller()
      class Slow {
        @Get('/slow') async slow() {
          entered.resolve();
          await release.promise;
          return { finished: true };
        }
      }
      const { app, url, port } = await serve(controllerModule(Slow));
      const pending = fetch(`${url}/slow`);
      await entered.promise;

      let closed = false;
      const closing = app.close().then(() => (closed = true));
      assert.equal(await tryConnect(port), 'ECONNREFUSED');
      assert.equal(closed, false, 'close() resolved while a request was in flight');

      release.resolve();
      const response = await pending;
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { finished: true });
      await closing;
      assert.equal(closed, true);
      assert.equal(await tryConnect(port), 'ECONNREFUSED');
    });

    it('resolves with idle keep-alive connections open', async () => {
      @Controller()
      class Quick { @Get('/quick') quick() { return 'ok'; } }
      const { app, url, port } = await serve(controllerModule(Quick));
      const response = await fetch(`${url}/quick`, { headers: { connection: 'keep-alive' } });
      assert.equal(await response.text(), '"ok"');
      await app.close();
      assert.equal(await tryConnect(port), 'ECONNREFUSED');
    });

    it('cuts off a request still running after shutdownTimeout', async () => {
      const entered = deferred();
      @Controller()
      class Stuck {
        @Get('/stuck') stuck() {
          entered.resolve();
          return new Promise<never>(() => {});
        }
      }
      const { app, url } = await serve(controllerModule(Stuck), { shutdownTimeout: 50 });
      const pending = fetch(`${url}/stuck`);
      await entered.promise;
      await app.close();
      await assert.rejects(pending, TypeError);
    });
  });
});
