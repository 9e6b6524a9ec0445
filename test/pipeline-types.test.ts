/**
 * Type-level tests of the pipeline: `npm run typecheck` (tsc) runs them. Each `Expect<Equal<…>>`
 * must hold and each `@ts-expect-error` must meet an error, or the typecheck fails.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import {
  All,
  Catch,
  Controller,
  type ExceptionFilter,
  type ExecutionContext,
  Get,
  type Guard,
  type HttpContext,
  type HttpResponse,
  type Interceptor,
  MetadataKey,
  type Middleware,
  Options,
  Post,
  type ToniApplication,
  UseFilters,
  UseGuards,
  UseInterceptors,
} from 'tonijs';
import { fromNodeMiddleware } from 'tonijs/node';
import type { WsClient, WsHandshake } from 'tonijs/websocket';
import { z } from 'zod';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

// The checks below only need to compile; this function is never called.
function typeChecks(app: ToniApplication): void {
  class User {
    constructor(readonly id: string) {}
  }
  const TENANT = new MetadataKey<string>('tenant');

  // The execution context narrows on kind; set/get are typed by their key.
  const guard: Guard = {
    canActivate(ctx: ExecutionContext) {
      ctx.set(User, new User('ann'));
      ctx.set(TENANT, 'acme');
      // @ts-expect-error the value must have the key's type
      ctx.set(TENANT, 42);
      type _get = [Expect<Equal<ReturnType<typeof ctx.get<User>>, User | undefined>>];
      if (ctx.kind === 'http') {
        type _http = [Expect<Equal<typeof ctx.http, HttpContext>>, Expect<Equal<typeof ctx.handler, Function>>];
      } else if (ctx.kind === 'handshake') {
        type _handshake = [Expect<Equal<typeof ctx.handshake, WsHandshake>>, Expect<Equal<typeof ctx.handler, undefined>>];
      } else {
        type _event = [Expect<Equal<typeof ctx.client, WsClient>>, Expect<Equal<typeof ctx.event, string>>, Expect<Equal<typeof ctx.data, unknown>>];
      }
      // @ts-expect-error only an HTTP context has the HttpContext
      void ctx.http;
      return ctx.headers.has('authorization');
    },
  };
  // @ts-expect-error a guard answers a boolean (or a promise of one)
  const wrongGuard: Guard = { canActivate: () => 'yes' };
  const asyncGuard: Guard = { canActivate: async () => true };

  const interceptor: Interceptor = { intercept: async (_ctx, next) => ({ wrapped: await next() }) };

  @Catch(RangeError)
  class RangeFilter implements ExceptionFilter<RangeError> {
    catch(error: RangeError) {
      return { message: error.message };
    }
  }

  class GuardClass implements Guard {
    canActivate() {
      return true;
    }
  }

  // The decorators take classes and instances, on classes and methods.
  @UseGuards(GuardClass, guard, asyncGuard)
  @UseInterceptors(interceptor)
  @UseFilters(RangeFilter)
  @Controller('/typed')
  class TypedController {
    @UseGuards(GuardClass)
    @Get('/')
    index(ctx: HttpContext) {
      type _user = Expect<Equal<ReturnType<typeof ctx.get<User>>, User | undefined>>;
      return ctx.get(User)?.id;
    }

    // params and query schemas fix those parts of the context, as body schemas do.
    @Get('/:id', { params: z.object({ id: z.coerce.number() }), query: z.object({ full: z.stringbool().optional() }) })
    find(ctx: HttpContext<unknown, { id: number }, { full?: boolean }>) {
      return ctx.params.id + (ctx.query.full === true ? 1 : 0);
    }

    // @ts-expect-error the params schema's output is a number, not a string
    @Get('/:id/wrong', { params: z.object({ id: z.coerce.number() }) })
    wrongParams(ctx: HttpContext<unknown, { id: string }>) {
      return ctx.params.id;
    }

    // @ts-expect-error with a query schema, the query is its output, not URLSearchParams
    @Get('/search', { query: z.object({ q: z.string() }) })
    wrongQuery(ctx: HttpContext<unknown, Record<string, string>, URLSearchParams>) {
      return ctx.query.get('q');
    }

    @Post('/both', { params: z.object({ team: z.string() }), body: z.object({ text: z.string() }) })
    both(ctx: HttpContext<{ text: string }, { team: string }>) {
      return `${ctx.params.team}: ${ctx.body.text}`;
    }

    @Options('/')
    options() {}

    @All('/any')
    any(ctx: HttpContext) {
      return ctx.method;
    }
  }

  // Middleware takes the context and next(), and answers an HttpResponse.
  const middleware: Middleware = async (ctx, next) => {
    const response = await next();
    type _response = Expect<Equal<typeof response, HttpResponse>>;
    return ctx.path === '/' ? response : response;
  };
  // @ts-expect-error middleware must answer a response
  const wrongMiddleware: Middleware = async () => 'text';
  app.use(middleware, fromNodeMiddleware((_req, _res, next) => next()));
  app.useGlobalGuards(GuardClass, guard).useGlobalInterceptors(interceptor).useGlobalFilters(RangeFilter);
  app.enableCors({ origin: [/example\.com$/, 'https://app.example.com'], credentials: true, maxAge: 60 });
  // @ts-expect-error origin takes no numbers
  app.enableCors({ origin: 42 });
  app.useStaticAssets(new URL('./public', import.meta.url), { prefix: '/static', maxAge: 60_000 });
  // @ts-expect-error dotfiles is 'ignore' or 'allow'
  app.useStaticAssets('/srv/public', { dotfiles: 'hide' });

  void [wrongGuard, wrongMiddleware, TypedController];
}

it('compiles (the checks run in tsc)', () => {
  assert.equal(typeof typeChecks, 'function');
});
