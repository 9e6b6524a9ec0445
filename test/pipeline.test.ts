import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import {
  All,
  Catch,
  Controller,
  type ExceptionFilter,
  type ExecutionContext,
  Get,
  type Guard,
  type HttpContext,
  HttpException,
  HttpResponse,
  Injectable,
  InjectionToken,
  type Interceptor,
  MetadataKey,
  Module,
  Options,
  Post,
  ToniError,
  type ToniApplication,
  ToniFactory,
  UseFilters,
  UseGuards,
  UseInterceptors,
  inject,
} from 'tonijs';
import helmet from 'helmet';
import { fromNodeMiddleware } from 'tonijs/node';
import { type Gateway, On, type WsClient, WsException } from 'tonijs/websocket';
import { rawRequest, moduleOf, serveApp } from './support/http.js';
import { connect, expectRefusal } from './support/ws-client.js';

const apps: ToniApplication[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

// ---------------------------------------------------------------------------------------------
// The SPEC's example of the pipeline, as written there (with the parts it leaves out filled in).

namespace Spec {
  export class User {
    constructor(readonly id: string, readonly teams: readonly string[]) {}
  }

  @Injectable()
  export class AuthService {
    userFor(header: string | null): User | undefined {
      return header === 'Bearer ann' ? new User('ann', ['core']) : undefined;
    }
  }

  export class DomainError extends Error {}

  @Injectable()
  export class Timings {
    readonly seen: string[] = [];
  }

  @Injectable()
  export class AuthGuard implements Guard {
    private readonly auth = inject(AuthService);
    canActivate(ctx: ExecutionContext) {
      const user = this.auth.userFor(ctx.headers.get('authorization'));   // the request's or the handshake's headers
      if (user === undefined) throw new HttpException(401, 'Sign in first');
      ctx.set(User, user);             // read by the handler: HttpContext.get(User), or client.getMetadata(User)
      return true;
    }
  }

  @Injectable()
  export class TimingInterceptor implements Interceptor {
    private readonly timings = inject(Timings);
    async intercept(ctx: ExecutionContext, next: () => Promise<unknown>) {
      const start = performance.now();
      try {
        return await next();
      } finally {
        this.timings.seen.push(`${ctx.kind} ${ctx.class.name}.${ctx.handler?.name} ${(performance.now() - start) >= 0}`);
      }
    }
  }

  @Catch(DomainError)
  export class DomainErrorFilter implements ExceptionFilter<DomainError> {
    catch(error: DomainError, ctx: ExecutionContext) {
      return ctx.kind === 'event' ? new WsException('domain', error.message) : new HttpException(422, error.message);
    }
  }

  export const TeamParams = z.object({ team: z.string().min(1) });
  export const NewMessage = z.object({ text: z.string().min(1).max(500) });

  @UseGuards(AuthGuard)                 // on a class: every route, or (on a gateway) the handshake
  @Controller('/teams')
  export class TeamsController {
    @UseInterceptors(TimingInterceptor) // on a method: that route or event
    @Post('/:team/messages', { params: TeamParams, body: NewMessage })
    post(ctx: HttpContext<z.output<typeof NewMessage>>) {
      const user = ctx.get(User)!;
      const team = ctx.params['team']!;
      if (!user.teams.includes(team)) throw new DomainError(`${user.id} is not in ${team}`);
      return HttpResponse.created().json({ team, from: user.id, text: ctx.body.text }).build();
    }
  }

  @Injectable()
  export class TeamsGateway implements Gateway {
    readonly path = '/teams';
    @On('whoami')
    whoami(client: WsClient) { return client.getMetadata(User)?.id; }
    @On('leave')
    leave() { throw new DomainError('The last member cannot leave'); }
  }

  @Module({ controllers: [TeamsController], providers: [AuthService, Timings, TeamsGateway] })
  export class AppModule {}
}

describe('the SPEC’s pipeline example', () => {
  it('runs: middleware, helmet, CORS, static files, global and class guards, interceptors and filters, on routes, handshakes and events', async () => {
    const { AppModule, AuthGuard, TimingInterceptor, DomainErrorFilter, Timings } = Spec;
    const app = await ToniFactory.create(AppModule, undefined, { logger: false });
    apps.push(app);
    app.use(async (ctx, next) => {                        // middleware: every HTTP request, before routing
      if (ctx.path === '/maintenance') return HttpResponse.status(503).text('Back soon').build();
      const response = await next();
      return HttpResponse.from(response).header('x-request-id', crypto.randomUUID()).build();
    });
    app.use(fromNodeMiddleware(helmet()));                // any Express/Connect middleware (tonijs/node)
    app.enableCors({ origin: ['https://app.example.com'], credentials: true });
    app.useStaticAssets(new URL('./fixtures/public', import.meta.url), { prefix: '/static' });
    app.useGlobalGuards(AuthGuard);                       // routes, handshakes and events
    app.useGlobalInterceptors(TimingInterceptor);
    app.useGlobalFilters(DomainErrorFilter);
    const url = await app.listen(0, '127.0.0.1');
    const origin = 'https://app.example.com';
    const post = (team: string, body: unknown, authorization?: string) =>
      fetch(`${url}/teams/${team}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin, ...(authorization === undefined ? {} : { authorization }) },
        body: JSON.stringify(body),
      });

    const anonymous = await post('core', { text: '' });
    assert.equal(anonymous.status, 401, 'guards before validation');
    assert.equal(anonymous.headers.get('access-control-allow-origin'), origin);
    assert.equal(anonymous.headers.get('access-control-allow-credentials'), 'true');
    assert.match(anonymous.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(anonymous.headers.get('x-content-type-options'), 'nosniff');
    assert.equal((await post('core', { text: '' }, 'Bearer ann')).status, 400);
    const created = await post('core', { text: 'hi' }, 'Bearer ann');
    assert.equal(created.status, 201);
    assert.deepEqual(await created.json(), { team: 'core', from: 'ann', text: 'hi' });
    const outsider = await post('sales', { text: 'hi' }, 'Bearer ann');
    assert.equal(outsider.status, 422);
    assert.equal(((await outsider.json()) as { message: string }).message, 'ann is not in sales');
    assert.deepEqual(app.get(Timings).seen.slice(0, 2), ['http TeamsController.post true', 'http TeamsController.post true'], 'the global interceptor and the method’s');

    const maintenance = await fetch(`${url}/maintenance`);
    assert.equal(maintenance.status, 503);
    assert.equal(await maintenance.text(), 'Back soon');
    const preflight = await fetch(`${url}/teams/core/messages`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), origin);
    const file = await fetch(`${url}/static/hello.txt`);
    assert.equal(await file.text(), 'Hello from a static file\n');
    assert.equal(file.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.ok(file.headers.get('x-request-id') !== null);

    const wsUrl = url.replace('http', 'ws') + '/teams';
    assert.equal((await expectRefusal(wsUrl)).status, 401, 'the global guard at the handshake');
    const client = await connect(wsUrl, { headers: { authorization: 'Bearer ann' } });
    try {
      client.send(JSON.stringify({ event: 'whoami', data: null, id: 1 }));
      assert.deepEqual(JSON.parse(await client.nextText()), { id: 1, data: 'ann' });
      client.send(JSON.stringify({ event: 'leave', data: null, id: 2 }));
      assert.deepEqual(JSON.parse(await client.nextText()), { id: 2, error: { code: 'domain', message: 'The last member cannot leave' } });
      assert.ok(app.get(Timings).seen.includes('event TeamsGateway.whoami true'));
    } finally {
      client.ws.terminate();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Guards

class User {
  constructor(readonly name: string) {}
}

@Injectable()
class AuthService {
  userFor(header: string | null): User | undefined {
    return header === 'Bearer ann' ? new User('ann') : header === 'Bearer bob' ? new User('bob') : undefined;
  }
}

@Injectable()
class AuthGuard implements Guard {
  private readonly auth = inject(AuthService);
  canActivate(ctx: ExecutionContext) {
    const user = this.auth.userFor(ctx.headers.get('authorization'));
    if (user === undefined) throw new HttpException(401, 'Sign in first');
    ctx.set(User, user);
    return true;
  }
}

const Message = z.object({ text: z.string().min(1) });

describe('guards', () => {
  it('run before validation: an unauthenticated request with a bad body is 401, not 400; an authenticated one gets the 400', async () => {
    @UseGuards(AuthGuard)
    @Controller('/notes')
    class NotesController {
      @Post('/', { body: Message })
      create(ctx: HttpContext<z.output<typeof Message>>) {
        return { by: ctx.get(User)?.name, text: ctx.body.text };
      }
    }
    const { url } = await serveApp(apps, moduleOf([NotesController], [AuthService]));
    const anonymous = await fetch(`${url}/notes`, json({ text: '' }));
    assert.equal(anonymous.status, 401);
    assert.deepEqual(await anonymous.json(), { statusCode: 401, message: 'Sign in first', error: 'Unauthorized' });
    const malformed = await fetch(`${url}/notes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":' });
    assert.equal(malformed.status, 401, 'a malformed body is not even read before the guard ran');
    const invalid = await fetch(`${url}/notes`, { ...json({ text: '' }), headers: { 'content-type': 'application/json', authorization: 'Bearer ann' } });
    assert.equal(invalid.status, 400);
    assert.equal(((await invalid.json()) as { issues: unknown[] }).issues.length, 1);
    const created = await fetch(`${url}/notes`, { ...json({ text: 'hi' }), headers: { 'content-type': 'application/json', authorization: 'Bearer ann' } });
    assert.deepEqual(await created.json(), { by: 'ann', text: 'hi' });
  });

  it('false answers 403 Forbidden, synchronously or from a promise, and the handler never runs', async () => {
    let calls = 0;
    const never: Guard = { canActivate: () => false };
    const later: Guard = { canActivate: async () => false };
    @Controller()
    class Routes {
      @UseGuards(never)
      @Get('/sync')
      sync() { calls++; }

      @UseGuards(later)
      @Get('/async')
      async() { calls++; }
    }
    const { url } = await serveApp(apps, moduleOf([Routes]));
    for (const path of ['/sync', '/async']) {
      const response = await fetch(`${url}${path}`);
      assert.equal(response.status, 403);
      assert.deepEqual(await response.json(), { statusCode: 403, message: 'Forbidden', error: 'Forbidden' });
    }
    assert.equal(calls, 0);
  });

  it('anything but true refuses', async () => {
    const truthy = { canActivate: () => 'yes' as unknown as boolean };
    @Controller()
    class Routes {
      @UseGuards(truthy)
      @Get('/')
      index() { return 'ran'; }
    }
    const { url } = await serveApp(apps, moduleOf([Routes]));
    assert.equal((await fetch(url)).status, 403);
  });

  it('run global first, then the class’s, then the method’s, in the order written, and stop at the first refusal', async () => {
    const order: string[] = [];
    const named = (name: string, verdict = true): Guard => ({ canActivate: () => (order.push(name), verdict) });
    @UseGuards(named('class-1'), named('class-2'))
    @Controller()
    class Routes {
      @UseGuards(named('method-1'))
      @UseGuards(named('method-2'))
      @Get('/all')
      all() { order.push('handler'); }

      @UseGuards(named('refuses', false), named('never'))
      @Get('/refused')
      refused() { order.push('handler'); }
    }
    const { url } = await serveApp(apps, moduleOf([Routes]), (app) => app.useGlobalGuards(named('global')));
    assert.equal((await fetch(`${url}/all`)).status, 204);
    assert.deepEqual(order.splice(0), ['global', 'class-1', 'class-2', 'method-1', 'method-2', 'handler']);
    assert.equal((await fetch(`${url}/refused`)).status, 403);
    assert.deepEqual(order.splice(0), ['global', 'class-1', 'class-2', 'refuses']);
  });

  it('a guard that throws something other than an HttpException answers 500 and is logged', async () => {
    const broken: Guard = {
      canActivate() {
        throw new Error('token store down');
      },
    };
    @Controller()
    class Routes {
      @UseGuards(broken)
      @Get('/')
      index() {}
    }
    const { url, logger } = await serveApp(apps, moduleOf([Routes]));
    const response = await fetch(url);
    assert.equal(response.status, 500);
    assert.doesNotMatch(await response.text(), /token store/);
    const entry = await logger.waitFor((e) => e.level === 'error');
    assert.equal((entry.details['err'] as Error).message, 'token store down');
    assert.equal(entry.details['handler'], 'Routes.index');
  });

  it('a refusal before the body is read closes the connection instead of reading the body', async () => {
    @UseGuards({ canActivate: () => false })
    @Controller()
    class Routes {
      @Post('/upload')
      upload() {}
    }
    const { port } = await serveApp(apps, moduleOf([Routes]));
    // The announced body never comes: only a closed connection ends this exchange.
    const response = await rawRequest(port, 'POST /upload HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{"a":');
    assert.equal(response.status, 403);
    assert.equal(response.headers.get('connection'), 'close');
  });

  it('are resolved by the container: a listed provider is the same singleton, an unlisted class is created with its module’s injection context, an instance is used as it is', async () => {
    const seen: unknown[] = [];
    const PREFIX = new InjectionToken<string>('PREFIX');
    @Injectable()
    class ListedGuard implements Guard {
      canActivate() { seen.push(this); return true; }
    }
    class UnlistedGuard implements Guard {
      readonly prefix = inject(PREFIX);
      canActivate() { seen.push(this.prefix); return true; }
    }
    const instance: Guard = { canActivate: () => (seen.push('instance'), true) };
    @UseGuards(ListedGuard, UnlistedGuard, instance)
    @Controller()
    class Routes {
      @Get('/')
      index() {}
    }
    @Module({ controllers: [Routes], providers: [ListedGuard, { provide: PREFIX, useValue: 'from the module' }] })
    class FeatureModule {}
    const { url, app } = await serveApp(apps, FeatureModule);
    assert.equal((await fetch(url)).status, 204);
    assert.deepEqual(seen, [app.get(ListedGuard), 'from the module', 'instance']);
  });

  it('fail at ToniFactory.create when a guard’s dependency is missing, naming the chain', async () => {
    @Injectable()
    class Missing {}
    class NeedsMissing implements Guard {
      readonly missing = inject(Missing);
      canActivate() { return true; }
    }
    @UseGuards(NeedsMissing)
    @Controller()
    class Routes {
      @Get('/')
      index() {}
    }
    await assert.rejects(ToniFactory.create(moduleOf([Routes]), undefined, { logger: false }), (error: unknown) => {
      assert.ok(error instanceof ToniError);
      assert.equal(error.code, 'TONI_ERR_UNKNOWN_PROVIDER');
      assert.match(error.message, /TestModule > Routes\.index > NeedsMissing > Missing/);
      return true;
    });
  });

  it('refuse what is not a guard: at decoration for a non-class, at create for a class without canActivate, at useGlobalGuards for either', async () => {
    assert.throws(() => UseGuards(undefined as unknown as Guard), /UseGuards\(\) takes guard classes or instances with a canActivate\(\) method, got undefined \(often an import cycle/);
    assert.throws(() => UseGuards({} as Guard), /canActivate/);
    class NotAGuard {}
    @UseGuards(NotAGuard as never)
    @Controller()
    class Routes {
      @Get('/')
      index() {}
    }
    await assert.rejects(ToniFactory.create(moduleOf([Routes]), undefined, { logger: false }), (error: unknown) => {
      assert.ok(error instanceof ToniError);
      assert.equal(error.code, 'TONI_ERR_INVALID_PIPELINE');
      assert.match(error.message, /NotAGuard, used as a guard by Routes\.index, has no canActivate\(\) method/);
      return true;
    });
    const app = await ToniFactory.create(moduleOf([]), undefined, { logger: false });
    apps.push(app);
    assert.throws(() => app.useGlobalGuards(NotAGuard as never), { code: 'TONI_ERR_INVALID_PIPELINE' });
    assert.throws(() => app.useGlobalGuards(42 as never), { code: 'TONI_ERR_INVALID_PIPELINE' });
  });

  it('see an ExecutionContext of kind http with the class, the method, the request and its headers', async () => {
    let seen: ExecutionContext | undefined;
    const spy: Guard = { canActivate: (ctx) => ((seen = ctx), true) };
    @Controller('/items')
    class ItemsController {
      @UseGuards(spy)
      @Get('/:id')
      find(ctx: HttpContext) { return { id: ctx.params['id'] }; }
    }
    const { url } = await serveApp(apps, moduleOf([ItemsController]));
    await fetch(`${url}/items/7?x=1`, { headers: { 'X-Trace': 'abc' } });
    assert.ok(seen !== undefined && seen.kind === 'http');
    assert.equal(seen.class, ItemsController);
    assert.equal(seen.handler, ItemsController.prototype.find);
    assert.equal(seen.headers.get('x-trace'), 'abc');
    assert.deepEqual(seen.http.params, { id: '7' });
    assert.equal(seen.http.query.get('x'), '1');
    assert.equal(seen.http.method, 'GET');
  });

  it('apply from the base class to subclasses’ routes', async () => {
    @UseGuards({ canActivate: () => false })
    class Protected {}
    @Controller()
    class Routes extends Protected {
      @Get('/')
      index() {}
    }
    const { url } = await serveApp(apps, moduleOf([Routes]));
    assert.equal((await fetch(url)).status, 403);
  });
});

// ---------------------------------------------------------------------------------------------
// Interceptors

describe('interceptors', () => {
  it('wrap validation and the handler as an onion, see the result on the way back, and replace it', async () => {
    const order: string[] = [];
    const wrap = (name: string): Interceptor => ({
      async intercept(_ctx, next) {
        order.push(`${name} in`);
        const result = await next();
        order.push(`${name} out`);
        return { [name]: result };
      },
    });
    @UseInterceptors(wrap('class'))
    @Controller()
    class Routes {
      @UseInterceptors(wrap('method'))
      @Post('/', { body: Message })
      create(ctx: HttpContext<z.output<typeof Message>>) {
        order.push('handler');
        return ctx.body.text;
      }
    }
    const { url } = await serveApp(apps, moduleOf([Routes]), (app) => app.useGlobalInterceptors(wrap('global')));
    const response = await fetch(url, json({ text: 'hi' }));
    assert.deepEqual(await response.json(), { global: { class: { method: 'hi' } } });
    assert.deepEqual(order, ['global in', 'class in', 'method in', 'handler', 'method out', 'class out', 'global out']);
  });

  it('see validation failures as a rejected next(), and can answer them differently', async () => {
    const rescue: Interceptor = {
      async intercept(_ctx, next) {
        try {
          return await next();
        } catch (error) {
          assert.ok(error instanceof HttpException && error.status === 400);
          return HttpResponse.status(422).json({ rescued: error.message }).build();
        }
      },
    };
    @Controller()
    class Routes {
      @UseInterceptors(rescue)
      @Post('/', { body: Message })
      create() { return 'never'; }
    }
    const { url } = await serveApp(apps, moduleOf([Routes]));
    const response = await fetch(url, json({ text: '' }));
    assert.equal(response.status, 422);
    assert.deepEqual(await response.json(), { rescued: 'Validation failed' });
  });

  it('run after the guards', async () => {
    const order: string[] = [];
    @UseInterceptors({ intercept: (_ctx, next) => (order.push('interceptor'), next()) })
    @UseGuards({ canActivate: () => (order.push('guard'), true) })
    @Controller()
    class Routes {
      @Get('/')
      index() { order.push('handler'); return 1; }
    }
    const { url } = await serveApp(apps, moduleOf([Routes]));
    assert.equal(await (await fetch(url)).text(), '1');
    assert.deepEqual(order, ['guard', 'interceptor', 'handler']);
  });

  it('a synchronous throw from intercept is the route’s error', async () => {
    @Controller()
    class Routes {
      @UseInterceptors({
        intercept() {
          throw new HttpException(429, 'Slow down');
        },
      })
      @Get('/')
      index() {}
    }
    const { url } = await serveApp(apps, moduleOf([Routes]));
    const response = await fetch(url);
    assert.equal(response.status, 429);
    assert.equal(((await response.json()) as { message: string }).message, 'Slow down');
  });
});

// ---------------------------------------------------------------------------------------------
// Exception filters

class OutOfStock extends Error {
  constructor(readonly sku: string) {
    super(`${sku} is out of stock`);
  }
}
class Backorder extends OutOfStock {}

describe('exception filters', () => {
  it('map the errors their @Catch names (subclasses too) to a response; others go on as usual', async () => {
    @Catch(OutOfStock)
    class StockFilter implements ExceptionFilter<OutOfStock> {
      catch(error: OutOfStock, ctx: ExecutionContext) {
        assert.equal(ctx.kind, 'http');
        return HttpResponse.status(409).json({ sku: error.sku }).build();
      }
    }
    @UseFilters(StockFilter)
    @Controller()
    class Routes {
      @Get('/out')
      out() { throw new OutOfStock('A1'); }

      @Get('/back')
      back() { throw new Backorder('B2'); }

      @Get('/other')
      other() { throw new Error('unrelated'); }
    }
    const { url, logger } = await serveApp(apps, moduleOf([Routes]));
    const out = await fetch(`${url}/out`);
    assert.equal(out.status, 409);
    assert.deepEqual(await out.json(), { sku: 'A1' });
    assert.deepEqual(await (await fetch(`${url}/back`)).json(), { sku: 'B2' });
    assert.equal((await fetch(`${url}/other`)).status, 500);
    await logger.waitFor((entry) => entry.level === 'error' && (entry.details['err'] as Error).message === 'unrelated');
  });

  it('may return an HttpException (its status), or any value a handler could return', async () => {
    @Catch(OutOfStock)
    class AsException implements ExceptionFilter<OutOfStock> {
      catch(error: OutOfStock) { return new HttpException(409, error.message); }
    }
    @Catch()
    class AsValue implements ExceptionFilter {
      async catch() { return { fallback: true }; }
    }
    @Controller()
    class Routes {
      @UseFilters(AsException)
      @Get('/exception')
      exception() { throw new OutOfStock('A1'); }

      @UseFilters(AsValue)
      @Get('/value')
      value() { throw new Error('anything'); }
    }
    const { url } = await serveApp(apps, moduleOf([Routes]));
    const exception = await fetch(`${url}/exception`);
    assert.equal(exception.status, 409);
    assert.deepEqual(await exception.json(), { statusCode: 409, message: 'A1 is out of stock', error: 'Conflict' });
    const value = await fetch(`${url}/value`);
    assert.equal(value.status, 200);
    assert.deepEqual(await value.json(), { fallback: true });
  });

  it('are asked from the method’s to the class’s to the global ones; the first that matches handles the error', async () => {
    const tagged = (tag: string, ...errors: (abstract new (...args: never[]) => unknown)[]) => {
      @Catch(...errors)
      class Tagged implements ExceptionFilter {
        catch() { return { by: tag }; }
      }
      return Tagged;
    };
    @UseFilters(tagged('class', OutOfStock))
    @Controller()
    class Routes {
      @UseFilters(tagged('method', Backorder))
      @Get('/back')
      back() { throw new Backorder('x'); }

      @UseFilters(tagged('method', Backorder))
      @Get('/out')
      out() { throw new OutOfStock('x'); }

      @Get('/plain')
      plain() { throw new TypeError('x'); }
    }
    const { url } = await serveApp(apps, moduleOf([Routes]), (app) => app.useGlobalFilters(tagged('global')));
    assert.deepEqual(await (await fetch(`${url}/back`)).json(), { by: 'method' });
    assert.deepEqual(await (await fetch(`${url}/out`)).json(), { by: 'class' });
    assert.deepEqual(await (await fetch(`${url}/plain`)).json(), { by: 'global' });
  });

  it('see what guards and validation throw, so a global filter can reshape every error', async () => {
    @Catch(HttpException)
    class Envelope implements ExceptionFilter<HttpException> {
      catch(error: HttpException) {
        return HttpResponse.status(error.status).json({ error: { status: error.status, reason: error.message } }).build();
      }
    }
    @Controller()
    class Routes {
      @UseGuards({ canActivate: () => false })
      @Get('/guarded')
      guarded() {}

      @Post('/validated', { body: Message })
      validated() {}
    }
    const { url } = await serveApp(apps, moduleOf([Routes]), (app) => app.useGlobalFilters(Envelope));
    assert.deepEqual(await (await fetch(`${url}/guarded`)).json(), { error: { status: 403, reason: 'Forbidden' } });
    assert.deepEqual(await (await fetch(`${url}/validated`, json({}))).json(), { error: { status: 400, reason: 'Validation failed' } });
  });

  it('a filter that throws answers as that error would, unfiltered', async () => {
    @Catch()
    class Rethrows implements ExceptionFilter {
      catch() { throw new HttpException(418); }
    }
    @Controller()
    class Routes {
      @UseFilters(Rethrows)
      @Get('/')
      index() { throw new Error('x'); }
    }
    const { url } = await serveApp(apps, moduleOf([Routes]));
    assert.equal((await fetch(url)).status, 418);
  });

  it('@Catch() takes error classes only, on classes only', () => {
    assert.throws(() => Catch('OutOfStock' as never), /@Catch\(\) takes error classes, got string OutOfStock/);
  });
});

// ---------------------------------------------------------------------------------------------
// Middleware

describe('middleware', () => {
  it('runs as an onion in registration order, around routing, for known and unknown routes', async () => {
    const order: string[] = [];
    @Controller()
    class Routes {
      @Get('/known')
      known() { order.push('handler'); return 'ok'; }
    }
    const { url } = await serveApp(apps, moduleOf([Routes]), (app) => {
      app.use(async (ctx, next) => {
        order.push(`a in ${ctx.path}`);
        const response = await next();
        order.push(`a out ${response.status}`);
        return response;
      });
      app.use(async (_ctx, next) => {
        order.push('b in');
        const response = await next();
        order.push('b out');
        return HttpResponse.from(response).header('x-b', 'seen').build();
      });
    });
    const known = await fetch(`${url}/known`);
    assert.equal(known.headers.get('x-b'), 'seen');
    assert.deepEqual(order.splice(0), ['a in /known', 'b in', 'handler', 'b out', 'a out 200']);
    const unknown = await fetch(`${url}/nowhere`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.headers.get('x-b'), 'seen');
    assert.deepEqual(order.splice(0), ['a in /nowhere', 'b in', 'b out', 'a out 404']);
  });

  it('the SPEC’s middleware: a short circuit, and a header added to every response', async () => {
    @Controller()
    class Routes {
      @Get('/hello')
      hello() { return { hello: 'world' }; }
    }
    const { url } = await serveApp(apps, moduleOf([Routes]), (app) => {
      app.use(async (ctx, next) => {
        if (ctx.path === '/maintenance') return HttpResponse.status(503).text('Back soon').build();
        const response = await next();
        return HttpResponse.from(response).header('x-request-id', crypto.randomUUID()).build();
      });
    });
    const maintenance = await fetch(`${url}/maintenance`);
    assert.equal(maintenance.status, 503);
    assert.equal(await maintenance.text(), 'Back soon');
    assert.equal(maintenance.headers.get('x-request-id'), null);
    const hello = await fetch(`${url}/hello`);
    assert.match(hello.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(hello.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.deepEqual(await hello.json(), { hello: 'world' });
  });

  it('next() resolves with the error response of what is thrown further in, so outer middleware still sees a response', async () => {
    const statuses: number[] = [];
    @Controller()
    class Routes {
      @Get('/boom')
      boom() { throw new Error('handler failed'); }
    }
    const { url } = await serveApp(apps, moduleOf([Routes]), (app) => {
      app.use(async (_ctx, next) => {
        const response = await next();
        statuses.push(response.status);
        return response;
      });
      app.use((ctx, next) => {
        if (ctx.path === '/denied') throw new HttpException(401, 'No');
        if (ctx.path === '/crash') throw new Error('middleware failed');
        return next();
      });
    });
    assert.equal((await fetch(`${url}/denied`)).status, 401);
    assert.equal((await fetch(`${url}/crash`)).status, 500);
    assert.equal((await fetch(`${url}/boom`)).status, 500);
    assert.deepEqual(statuses, [401, 500, 500]);
  });

  it('values a middleware sets are read by guards and handlers', async () => {
    const RequestId = new MetadataKey<string>('request id');
    @Controller()
    class Routes {
      @UseGuards({ canActivate: (ctx) => ctx.get(RequestId) === 'r-1' })
      @Get('/')
      index(ctx: HttpContext) { return ctx.get(RequestId); }
    }
    const { url } = await serveApp(apps, moduleOf([Routes]), (app) => {
      app.use((ctx, next) => {
        ctx.set(RequestId, 'r-1');
        return next();
      });
    });
    assert.equal(await (await fetch(url)).json(), 'r-1');
  });

  it('mistakes answer 500 with a log that says what to do: no response returned, next() called twice', async () => {
    @Controller()
    class Routes {
      @Get('/')
      index() { return 1; }
    }
    const { url, logger } = await serveApp(apps, moduleOf([Routes]), (app) => {
      app.use(async function forgetful(ctx, next) {
        if (ctx.path === '/forgot') {
          await next();
          return undefined as unknown as HttpResponse;
        }
        return next();
      });
      app.use(async function greedy(ctx, next) {
        if (ctx.path === '/twice') await next();
        return next();
      });
    });
    assert.equal((await fetch(`${url}/forgot`)).status, 500);
    const forgot = await logger.waitFor((entry) => entry.level === 'error' && /forgetful/.test(entry.message ?? ''));
    assert.match((forgot.details['err'] as Error).message, /middleware forgetful \(#1\) returned undefined instead of an HttpResponse: return the response next\(\) resolves with/);
    assert.equal((await fetch(`${url}/twice`)).status, 500);
    const twice = await logger.waitFor((entry) => entry.level === 'error' && /greedy/.test(entry.message ?? ''));
    assert.match((twice.details['err'] as Error).message, /next\(\) was called twice by middleware greedy \(#2\)/);
  });

  it('use() takes functions, before listen', async () => {
    const app = await ToniFactory.create(moduleOf([]), undefined, { logger: false });
    apps.push(app);
    assert.throws(() => app.use({} as never), (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_INVALID_PIPELINE' && /fromNodeMiddleware/.test(error.message));
    await app.listen(0, '127.0.0.1');
    for (const call of [() => app.use((_ctx, next) => next()), () => app.useGlobalGuards({ canActivate: () => true }), () => app.enableCors(), () => app.useGlobalInterceptors({ intercept: (_c, next) => next() })]) {
      assert.throws(call, (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_APP_STATE' && /before listen\(\)/.test(error.message));
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Route options and methods

describe('route schemas for params and query, @Options and @All', () => {
  it('params: the handler sees the schema’s output; a failure is 400 with the issues', async () => {
    const Params = z.object({ team: z.string().min(2), id: z.coerce.number().int() });
    @Controller('/teams')
    class TeamsController {
      @Get('/:team/items/:id', { params: Params })
      item(ctx: HttpContext<unknown, z.output<typeof Params>>) {
        return { team: ctx.params.team, id: ctx.params.id, type: typeof ctx.params.id };
      }
    }
    const { url } = await serveApp(apps, moduleOf([TeamsController]));
    assert.deepEqual(await (await fetch(`${url}/teams/core/items/42`)).json(), { team: 'core', id: 42, type: 'number' });
    const bad = await fetch(`${url}/teams/core/items/forty`);
    assert.equal(bad.status, 400);
    const body = (await bad.json()) as { message: string; issues: { path: string[] }[] };
    assert.equal(body.message, 'Invalid path parameters');
    assert.deepEqual(body.issues.map((issue) => issue.path), [['id']]);
  });

  it('query: an object of strings (arrays for repeated keys) in, the schema’s output out', async () => {
    const Query = z.object({ limit: z.coerce.number().max(100).default(20), tag: z.union([z.string(), z.array(z.string())]).optional() });
    @Controller()
    class Routes {
      @Get('/search', { query: Query })
      search(ctx: HttpContext<unknown, Record<string, string>, z.output<typeof Query>>) {
        return ctx.query;
      }
    }
    const { url } = await serveApp(apps, moduleOf([Routes]));
    assert.deepEqual(await (await fetch(`${url}/search`)).json(), { limit: 20 });
    assert.deepEqual(await (await fetch(`${url}/search?limit=5&tag=a&tag=b`)).json(), { limit: 5, tag: ['a', 'b'] });
    const bad = await fetch(`${url}/search?limit=500`);
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { message: string }).message, 'Invalid query string');
    // A key named __proto__ is a key like any other, not a prototype.
    assert.deepEqual(await (await fetch(`${url}/search?__proto__=x`)).json(), { limit: 20 });
  });

  it('params are validated before the body, so a bad path answers without reading it', async () => {
    @Controller()
    class Routes {
      @Post('/:id', { params: z.object({ id: z.uuid() }), body: Message })
      update() {}
    }
    const { url } = await serveApp(apps, moduleOf([Routes]));
    const response = await fetch(`${url}/nope`, json({ text: '' }));
    assert.equal(((await response.json()) as { message: string }).message, 'Invalid path parameters');
  });

  it('route options refuse what is not a Standard Schema', () => {
    assert.throws(() => Get('/', { query: { parse() {} } as never }), /@Get\(\) option query must be a Standard Schema/);
  });

  it('@Options serves OPTIONS; @All serves every method, and a route of the method itself wins', async () => {
    @Controller('/things')
    class Routes {
      @Options('/')
      options() { return HttpResponse.noContent().header('allow', 'GET, OPTIONS').build(); }

      @All('/any')
      any(ctx: HttpContext) { return { any: ctx.method }; }

      @Get('/any')
      get() { return { get: true }; }
    }
    const { url } = await serveApp(apps, moduleOf([Routes]));
    const options = await fetch(`${url}/things`, { method: 'OPTIONS' });
    assert.equal(options.status, 204);
    assert.equal(options.headers.get('allow'), 'GET, OPTIONS');
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'PROPFIND']) {
      assert.deepEqual(await (await fetch(`${url}/things/any`, { method })).json(), { any: method }, method);
    }
    assert.deepEqual(await (await fetch(`${url}/things/any`)).json(), { get: true });
  });
});

describe('request headers', () => {
  it('are a WHATWG Headers read on demand: case-insensitive get and has, every header when iterated, mutable, invalid names refused', async () => {
    @Controller()
    class Routes {
      @Get('/')
      index(ctx: HttpContext) {
        const headers = ctx.headers;
        const read = { auth: headers.get('Authorization'), has: headers.has('X-MULTI'), missing: headers.get('x-none') };
        let invalid = '';
        try {
          headers.get('bad name');
        } catch (error) {
          invalid = (error as Error).name;
        }
        headers.set('x-added', '1');
        return { ...read, invalid, isHeaders: headers instanceof Headers, all: [...headers].filter(([name]) => name.startsWith('x-') || name === 'authorization') };
      }
    }
    const { port } = await serveApp(apps, moduleOf([Routes]));
    const response = await rawRequest(port, 'GET / HTTP/1.1\r\nhost: x\r\nAuthorization: Bearer t\r\nX-Multi: a\r\nX-Multi: b\r\nconnection: close\r\n\r\n');
    assert.deepEqual(JSON.parse(response.body), {
      auth: 'Bearer t',
      has: true,
      missing: null,
      invalid: 'TypeError',
      isHeaders: true,
      all: [['authorization', 'Bearer t'], ['x-added', '1'], ['x-multi', 'a, b']],
    });
  });
});

describe('responses', () => {
  it('HttpResponse.from() keeps status, headers and body; stream() sends an async iterable as it comes, chunked or with its length', async () => {
    async function* chunks() {
      yield new TextEncoder().encode('hello, ');
      yield new TextEncoder().encode('world');
    }
    @Controller()
    class Routes {
      @Get('/chunked')
      chunked() { return HttpResponse.ok().header('content-type', 'text/plain').stream(chunks()).build(); }

      @Get('/sized')
      sized() { return HttpResponse.ok().stream(chunks(), { length: 12 }).build(); }

      @Get('/copied')
      copied() {
        const original = HttpResponse.created().header('x-a', '1').text('body').build();
        return HttpResponse.from(original).header('x-b', '2').build();
      }
    }
    const { url, port } = await serveApp(apps, moduleOf([Routes]));
    const chunked = await rawRequest(port, 'GET /chunked HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    assert.equal(chunked.headers.get('transfer-encoding'), 'chunked');
    assert.equal(chunked.headers.get('content-type'), 'text/plain');
    assert.equal(await (await fetch(`${url}/chunked`)).text(), 'hello, world');
    const sized = await fetch(`${url}/sized`);
    assert.equal(sized.headers.get('content-length'), '12');
    assert.equal(sized.headers.get('content-type'), 'application/octet-stream');
    assert.equal(await sized.text(), 'hello, world');
    const copied = await fetch(`${url}/copied`);
    assert.equal(copied.status, 201);
    assert.equal(copied.headers.get('x-a'), '1');
    assert.equal(copied.headers.get('x-b'), '2');
    assert.equal(await copied.text(), 'body');
    assert.throws(() => HttpResponse.from({ status: 200 } as never), /HttpResponse\.from\(\) takes an HttpResponse/);
    assert.throws(() => HttpResponse.ok().stream('text' as never), /async iterable/);
  });
});
