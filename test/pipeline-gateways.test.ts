import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import {
  Catch,
  type ExceptionFilter,
  type ExecutionContext,
  type Guard,
  HttpException,
  Injectable,
  type Interceptor,
  Module,
  ToniFactory,
  type ToniApplication,
  type ToniApplicationOptions,
  UseFilters,
  UseGuards,
  UseInterceptors,
  inject,
} from 'tonijs';
import { NodeHttpAdapter, WsAdapter, type WsAdapterOptions } from 'tonijs/node';
import { type Gateway, On, type WsClient, WsException, type WsHandshake, type WsMessage } from 'tonijs/websocket';
import { captureLogger, deferred } from './support/async.js';
import { type TestClient, connect, expectRefusal } from './support/ws-client.js';

const apps: ToniApplication[] = [];
const clients: TestClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.terminate();
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

/** Creates and starts an application with gateways; `configure` runs before listen. */
async function serveGateways(providers: (new () => object)[], configure: (app: ToniApplication) => void = () => {}, options: { ws?: WsAdapterOptions; app?: ToniApplicationOptions } = {}) {
  @Module({ providers })
  class GatewayModule {}
  const logger = captureLogger();
  const app = await ToniFactory.create(GatewayModule, new NodeHttpAdapter(), { logger, ...options.app });
  apps.push(app);
  const ws = new WsAdapter(options.ws);
  app.useWebSocketAdapter(ws);
  configure(app);
  await app.listen(0, '127.0.0.1');
  return { app, ws, logger, url: (path: string) => ws.getUrl(path) };
}

async function open(url: string, headers: Record<string, string> = {}): Promise<TestClient> {
  const client = await connect(url, { headers });
  clients.push(client);
  return client;
}

/** Sends an event asking for an acknowledgement and resolves with the reply envelope. */
async function ask(client: TestClient, event: string, data: unknown, id: number | string = 1): Promise<{ id: unknown; data?: unknown; error?: { code: string; message: string; [detail: string]: unknown } }> {
  client.send(JSON.stringify({ event, data, id }));
  return JSON.parse(await client.nextText()) as never;
}

class User {
  constructor(readonly name: string) {}
}

@Injectable()
class AuthService {
  readonly checked: string[] = [];
  userFor(header: string | null): User | undefined {
    this.checked.push(header ?? '(none)');
    return header === 'Bearer ann' ? new User('ann') : undefined;
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

describe('guards at the handshake', () => {
  it('a class guard runs before onHandshake; its refusal answers before any upgrade, and what it sets is the client’s metadata', async () => {
    const calls: string[] = [];
    @UseGuards(AuthGuard)
    @Injectable()
    class SecureGateway implements Gateway {
      readonly path = '/secure';
      onHandshake(handshake: WsHandshake) {
        calls.push(`onHandshake as ${handshake.getMetadata(User)?.name}`);
        return true;
      }
      async onConnect(client: WsClient) {
        calls.push('onConnect');
        await client.send(`hello ${client.getMetadata(User)?.name}`);
      }
      onMessage(_client: WsClient, _message: WsMessage) {}
    }
    const { url } = await serveGateways([SecureGateway, AuthService]);
    const refused = await expectRefusal(url('/secure'));
    assert.equal(refused.status, 401);
    assert.deepEqual(JSON.parse(refused.body), { statusCode: 401, message: 'Sign in first', error: 'Unauthorized' });
    assert.deepEqual(calls, [], 'neither onHandshake nor onConnect ran');
    const client = await open(url('/secure'), { authorization: 'Bearer ann' });
    assert.equal(await client.nextText(), 'hello ann');
    assert.deepEqual(calls, ['onHandshake as ann', 'onConnect']);
  });

  it('false answers 403; an async guard is waited for; a guard on a gateway with no onHandshake still guards it', async () => {
    const gate = deferred<boolean>();
    @UseGuards({ canActivate: () => gate.promise })
    @Injectable()
    class Waiting implements Gateway {
      readonly path = '/waiting';
      onMessage() {}
    }
    @UseGuards({ canActivate: () => false })
    @Injectable()
    class Closed implements Gateway {
      readonly path = '/closed';
      onMessage() {}
    }
    const { url } = await serveGateways([Waiting, Closed]);
    const closed = await expectRefusal(url('/closed'));
    assert.equal(closed.status, 403);
    assert.equal(JSON.parse(closed.body).message, 'Forbidden');
    const refusal = expectRefusal(url('/waiting'));
    gate.resolve(false);
    assert.equal((await refusal).status, 403);
  });

  it('a global guard guards every gateway’s handshake, and the routes', async () => {
    @Injectable()
    class Plain implements Gateway {
      readonly path = '/plain';
      onMessage() {}
    }
    const { url, app } = await serveGateways([Plain, AuthService], (app) => app.useGlobalGuards(AuthGuard));
    assert.equal((await expectRefusal(url('/plain'))).status, 401);
    await open(url('/plain'), { authorization: 'Bearer ann' });
    assert.equal((await fetch(`${app.getUrl()}/anything`)).status, 404, 'no route: the guard runs for routes, not for 404s');
  });

  it('a guard that outlasts handshakeTimeout is refused with 503; one that throws another error answers 500 and is logged', async () => {
    @UseGuards({ canActivate: () => new Promise<boolean>(() => {}) })
    @Injectable()
    class Hanging implements Gateway {
      readonly path = '/hanging';
      onMessage() {}
    }
    @UseGuards({ canActivate: () => { throw new Error('guard bug'); } })
    @Injectable()
    class Buggy implements Gateway {
      readonly path = '/buggy';
      onMessage() {}
    }
    const { url, logger } = await serveGateways([Hanging, Buggy], () => {}, { ws: { handshakeTimeout: 100 } });
    assert.equal((await expectRefusal(url('/hanging'))).status, 503);
    const buggy = await expectRefusal(url('/buggy'));
    assert.equal(buggy.status, 500);
    assert.doesNotMatch(buggy.body, /guard bug/);
    const entry = await logger.waitFor((e) => e.level === 'error');
    assert.equal((entry.details['err'] as Error).message, 'guard bug');
  });

  it('exception filters map what a handshake guard threw to the status to refuse with', async () => {
    class Banned extends Error {}
    @Catch(Banned)
    class BannedFilter implements ExceptionFilter<Banned> {
      catch(error: Banned) { return new HttpException(451, error.message); }
    }
    @UseFilters(BannedFilter)
    @UseGuards({ canActivate: () => { throw new Banned('Not in your country'); } })
    @Injectable()
    class Regional implements Gateway {
      readonly path = '/regional';
      onMessage() {}
    }
    const { url } = await serveGateways([Regional]);
    const refused = await expectRefusal(url('/regional'));
    assert.equal(refused.status, 451);
    assert.equal(JSON.parse(refused.body).message, 'Not in your country');
  });

  it('the handshake’s execution context: kind, handshake, headers, class, no handler', async () => {
    let seen: ExecutionContext | undefined;
    @UseGuards({ canActivate: (ctx) => ((seen = ctx), true) })
    @Injectable()
    class Observed implements Gateway {
      readonly path = '/observed';
      onMessage() {}
    }
    const { url } = await serveGateways([Observed]);
    await open(`${url('/observed')}?room=x`, { 'x-trace': 't1' });
    assert.ok(seen?.kind === 'handshake');
    assert.equal(seen.handshake.query.get('room'), 'x');
    assert.equal(seen.headers.get('x-trace'), 't1');
    assert.equal(seen.class, Observed);
    assert.equal(seen.handler, undefined);
  });
});

const Note = z.object({ text: z.string().min(1) });

describe('guards, interceptors and filters on events', () => {
  it('a method guard refuses with error forbidden; an HttpException it throws maps to its code; guards run before validation', async () => {
    const ran: string[] = [];
    @Injectable()
    class Notes implements Gateway {
      readonly path = '/notes';

      @UseGuards({ canActivate: (ctx) => ctx.kind === 'event' && (ctx.data as { admin?: boolean } | undefined)?.admin === true })
      @On('purge', { payload: z.object({ admin: z.boolean(), reason: z.string() }) })
      purge() { ran.push('purge'); return 'purged'; }

      @UseGuards({ canActivate: () => { throw new HttpException(401, 'Sign in to post'); } })
      @On('post', { payload: Note })
      post() { ran.push('post'); }

      @On('open')
      openEvent() { return 'anyone'; }
    }
    const { url } = await serveGateways([Notes]);
    const client = await open(url('/notes'));
    assert.deepEqual(await ask(client, 'purge', { admin: false }), { id: 1, error: { code: 'forbidden', message: 'The event "purge" was refused' } });
    // Not an admin and not a valid payload either: the guard answers first.
    assert.deepEqual(await ask(client, 'purge', { admin: 'yes' }, 2), { id: 2, error: { code: 'forbidden', message: 'The event "purge" was refused' } });
    const invalid = await ask(client, 'purge', { admin: true }, 3);
    assert.equal(invalid.error?.code, 'invalid_payload');
    assert.deepEqual(await ask(client, 'purge', { admin: true, reason: 'spam' }, 4), { id: 4, data: 'purged' });
    assert.deepEqual(await ask(client, 'post', { text: '' }, 5), { id: 5, error: { code: 'unauthorized', message: 'Sign in to post', status: 401 } });
    assert.deepEqual(await ask(client, 'open', null, 6), { id: 6, data: 'anyone' });
    client.send(JSON.stringify({ event: 'purge', data: {} }));
    assert.deepEqual(JSON.parse(await client.nextText()), { event: 'error', data: { code: 'forbidden', message: 'The event "purge" was refused', event: 'purge' } });
    assert.deepEqual(ran, ['purge']);
  });

  it('a global guard runs at the handshake and for every event, with the handshake’s headers and the metadata it set', async () => {
    const seenBy: string[] = [];
    @Injectable()
    class Chat implements Gateway {
      readonly path = '/chat';
      @On('whoami')
      whoami(client: WsClient) { return client.getMetadata(User)?.name; }
    }
    const { url, app } = await serveGateways([Chat, AuthService], (app) => {
      app.useGlobalGuards(AuthGuard, { canActivate: (ctx) => (seenBy.push(`${ctx.kind}:${ctx.get(User)?.name}`), true) });
    });
    const client = await open(url('/chat'), { authorization: 'Bearer ann' });
    assert.deepEqual(await ask(client, 'whoami', null), { id: 1, data: 'ann' });
    assert.deepEqual(seenBy, ['handshake:ann', 'event:ann']);
    assert.deepEqual(app.get(AuthService).checked, ['Bearer ann', 'Bearer ann']);
  });

  it('class guards of a gateway run at the handshake only; method guards per event', async () => {
    const order: string[] = [];
    @UseGuards({ canActivate: () => (order.push('class'), true) })
    @Injectable()
    class Layered implements Gateway {
      readonly path = '/layered';
      @UseGuards({ canActivate: () => (order.push('method'), true) })
      @On('go')
      go() { order.push('handler'); return 1; }
    }
    const { url } = await serveGateways([Layered], (app) => app.useGlobalGuards({ canActivate: () => (order.push('global'), true) }));
    const client = await open(url('/layered'));
    await ask(client, 'go', null);
    await ask(client, 'go', null, 2);
    assert.deepEqual(order, ['global', 'class', 'global', 'method', 'handler', 'global', 'method', 'handler']);
  });

  it('interceptors wrap validation and the handler, outermost first, and replace the acknowledgement', async () => {
    const order: string[] = [];
    const tag = (name: string): Interceptor => ({
      async intercept(ctx, next) {
        order.push(`${name} in`);
        try {
          return { [name]: await next() };
        } catch (error) {
          order.push(`${name} saw ${(error as WsException).code}`);
          throw error;
        }
      },
    });
    @UseInterceptors(tag('class'))
    @Injectable()
    class Wrapped implements Gateway {
      readonly path = '/wrapped';
      @UseInterceptors(tag('method'))
      @On('note', { payload: Note })
      note(_client: WsClient, data: z.output<typeof Note>) { order.push('handler'); return data.text; }
    }
    const { url } = await serveGateways([Wrapped], (app) => app.useGlobalInterceptors(tag('global')));
    const client = await open(url('/wrapped'));
    assert.deepEqual(await ask(client, 'note', { text: 'hi' }), { id: 1, data: { global: { class: { method: 'hi' } } } });
    assert.deepEqual(order.splice(0), ['global in', 'class in', 'method in', 'handler']);
    const invalid = await ask(client, 'note', { text: '' }, 2);
    assert.equal(invalid.error?.code, 'invalid_payload');
    assert.deepEqual(order, ['global in', 'class in', 'method in', 'method saw invalid_payload', 'class saw invalid_payload', 'global saw invalid_payload']);
  });

  it('exception filters on plain ws: a WsException they return is the error reply, a value the acknowledgement; others stay internal', async () => {
    class OutOfStock extends Error {
      constructor(readonly sku: string) { super(`${sku} is out of stock`); }
    }
    @Catch(OutOfStock)
    class StockFilter implements ExceptionFilter<OutOfStock> {
      catch(error: OutOfStock, ctx: ExecutionContext) {
        assert.equal(ctx.kind, 'event');
        return new WsException('out_of_stock', error.message, { sku: error.sku });
      }
    }
    @Catch(RangeError)
    class Fallback implements ExceptionFilter {
      catch() { return { fallback: true }; }
    }
    @UseFilters(StockFilter)
    @Injectable()
    class Shop implements Gateway {
      readonly path = '/shop';
      @On('buy')
      buy(_client: WsClient, sku: string) { throw new OutOfStock(sku); }
      @On('range')
      range() { throw new RangeError('x'); }
      @On('crash')
      crash() { throw new Error('secret detail'); }
    }
    const { url, logger } = await serveGateways([Shop], (app) => app.useGlobalFilters(Fallback));
    const client = await open(url('/shop'));
    assert.deepEqual(await ask(client, 'buy', 'A1'), { id: 1, error: { code: 'out_of_stock', message: 'A1 is out of stock', sku: 'A1' } });
    assert.deepEqual(await ask(client, 'range', null, 2), { id: 2, data: { fallback: true } });
    assert.deepEqual(await ask(client, 'crash', null, 3), { id: 3, error: { code: 'internal', message: 'Internal server error' } });
    await logger.waitFor((entry) => entry.level === 'error' && (entry.details['err'] as Error).message === 'secret detail');
  });

  it('the event’s execution context: client, handshake, event, raw data, class and method', async () => {
    let seen: ExecutionContext | undefined;
    @Injectable()
    class Observed implements Gateway {
      readonly path = '/observed';
      @UseGuards({ canActivate: (ctx) => ((seen = ctx), true) })
      @On('look', { payload: z.object({ n: z.coerce.number() }) })
      look() { return 'ok'; }
    }
    const { url } = await serveGateways([Observed]);
    const client = await open(url('/observed'), { 'x-trace': 't2' });
    await ask(client, 'look', { n: '3' });
    assert.ok(seen?.kind === 'event');
    assert.equal(seen.event, 'look');
    assert.deepEqual(seen.data, { n: '3' }, 'guards see the data as sent, before validation');
    assert.equal(seen.headers.get('x-trace'), 't2');
    assert.equal(seen.handshake, seen.client.handshake);
    assert.equal(seen.class, Observed);
    assert.equal(seen.handler, Observed.prototype.look);
  });

  it('events of one client stay in order behind an async guard', async () => {
    const gates = [deferred<boolean>(), deferred<boolean>()];
    let call = 0;
    @Injectable()
    class Ordered implements Gateway {
      readonly path = '/ordered';
      @UseGuards({ canActivate: () => gates[call++]?.promise ?? true })
      @On('step')
      step(_client: WsClient, n: number) { return n; }
    }
    const { url } = await serveGateways([Ordered]);
    const client = await open(url('/ordered'));
    for (const n of [1, 2, 3]) client.send(JSON.stringify({ event: 'step', data: n, id: n }));
    gates[1]!.resolve(true);
    gates[0]!.resolve(true);
    assert.deepEqual((await client.texts(3)).map((text) => JSON.parse(text) as unknown), [{ id: 1, data: 1 }, { id: 2, data: 2 }, { id: 3, data: 3 }]);
  });
});
