import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Controller, Get, Injectable, InjectionToken, Module, ToniError, inject, type ExecutionContext, type Guard } from 'tonijs';
import { HandshakeRefusedError, Test, TestWsClient, type TestingModule } from 'tonijs/testing';
import { BroadcastModule, BroadcastService, On, WsException, WsMessage, type Gateway, type WsClient, type WsHandshake } from 'tonijs/websocket';

class User {
  constructor(readonly name: string) {}
}

@Injectable()
class AuthService {
  verify(header: string): boolean { return header === 'Bearer real-secret'; }
  userFor(_header: string): User { return new User('real user'); }
}

const GREETING = new InjectionToken<string>('GREETING');

@Injectable()
class SecureGateway implements Gateway {
  readonly path = '/secure';
  private readonly auth = inject(AuthService);
  private readonly greeting = inject(GREETING);
  onHandshake(handshake: WsHandshake) {
    const header = handshake.headers.get('authorization');
    if (!header || !this.auth.verify(header)) return false;
    handshake.setMetadata(User, this.auth.userFor(header));
    return true;
  }
  async onConnect(client: WsClient) { await client.send(`${this.greeting}, ${client.getMetadata(User)?.name}`); }
  async onMessage(client: WsClient, message: WsMessage) {
    if (message.asText() === 'bye') await client.close(4000, 'asked to leave');
    else await client.send(WsMessage.binary(new Uint8Array([1, 2, 3])));
  }
}

@Controller('/greeting')
class GreetingController {
  private readonly greeting = inject(GREETING);
  @Get() get() { return { greeting: this.greeting }; }
}

@Module({ imports: [BroadcastModule], providers: [AuthService, SecureGateway, { provide: GREETING, useValue: 'Hello' }], controllers: [GreetingController] })
class AppModule {}

describe('tonijs/testing', () => {
  const modules: TestingModule[] = [];
  afterEach(async () => {
    await Promise.all(modules.splice(0).map((module) => module.close()));
  });
  const compile = async (builder: ReturnType<typeof Test.createTestingModule>) => {
    const module = await builder.compile();
    modules.push(module);
    return module;
  };

  it('overrides a provider with a value and serves the real application on a free port', async () => {
    const module = await compile(
      Test.createTestingModule({ imports: [AppModule] })
        .overrideProvider(AuthService).useValue({ verify: () => true, userFor: () => new User('fake user') }),
    );
    const app = await module.createApplication();
    assert.match(app.getUrl(), /^http:\/\/127\.0\.0\.1:\d+$/);
    const client = await TestWsClient.connect(app, '/secure', { headers: { authorization: 'anything' } });
    assert.equal(await client.expectMessage(), 'Hello, fake user');
    client.send('data');
    assert.deepEqual([...(await client.expectBinary())], [1, 2, 3]);
    client.send('bye');
    assert.deepEqual(await client.expectClose(4000), { code: 4000, reason: 'asked to leave' });
  });

  it('overrides with a class and with a factory that injects', async () => {
    class DenyAll extends AuthService {
      override verify(): boolean { return false; }
    }
    const module = await compile(
      Test.createTestingModule({ imports: [AppModule] })
        .overrideProvider(AuthService).useClass(DenyAll)
        .overrideProvider(GREETING).useFactory((auth: AuthService) => `Hi from ${auth.constructor.name}`, [AuthService]),
    );
    assert.equal(module.get(GREETING), 'Hi from DenyAll');
    const app = await module.createApplication();
    const response = await fetch(`${app.getUrl()}/greeting`);
    assert.deepEqual(await response.json(), { greeting: 'Hi from DenyAll' });
    await assert.rejects(TestWsClient.connect(app, '/secure', { headers: { authorization: 'Bearer real-secret' } }), (error: unknown) => {
      return error instanceof HandshakeRefusedError && error.status === 401;
    });
  });

  it('overrides with a fake that has only the members the test uses, of a class with private fields', async () => {
    @Injectable()
    class Billing {
      readonly #ledger: number[] = [];
      private readonly currency = 'EUR';
      readonly limits = { daily: 100, monthly: 1000 };
      charge(amount: number): { id: string; amount: number } {
        this.#ledger.push(amount);
        return { id: `${this.currency}-${this.#ledger.length}`, amount };
      }
      refund(_id: string): boolean { return false; }
    }
    @Controller('/billing')
    class BillingController {
      private readonly billing = inject(Billing);
      @Get('/charge') charge() { return { receipt: this.billing.charge(5), daily: this.billing.limits.daily }; }
    }
    @Module({ providers: [Billing], controllers: [BillingController] })
    class BillingModule {}

    // No `as unknown as Billing`: neither refund(), monthly nor the private fields are needed.
    const module = await compile(
      Test.createTestingModule({ imports: [BillingModule] })
        .overrideProvider(Billing).useValue({ charge: (amount) => ({ id: 'fake', amount: amount * 2 }), limits: { daily: 7 } }),
    );
    const app = await module.createApplication();
    const response = await fetch(`${app.getUrl()}/billing/charge`);
    assert.deepEqual(await response.json(), { receipt: { id: 'fake', amount: 10 }, daily: 7 });

    // A partial fake of a token nobody provides still fails compile().
    await assert.rejects(
      Test.createTestingModule({ imports: [AppModule] }).overrideProvider(Billing).useValue({ limits: { daily: 1 } }).compile(),
      (error: unknown) => error instanceof ToniError && /overrideProvider\(Billing\) replaced nothing/.test(error.message),
    );
  });

  it('fails compile() when an override replaces nothing, or the graph is broken', async () => {
    class Unused {}
    await assert.rejects(
      Test.createTestingModule({ imports: [AppModule] }).overrideProvider(Unused).useValue(new Unused()).compile(),
      (error: unknown) => error instanceof ToniError && /overrideProvider\(Unused\) replaced nothing/.test(error.message),
    );
    await assert.rejects(
      Test.createTestingModule({ providers: [SecureGateway] }).compile(),
      (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_UNKNOWN_PROVIDER',
    );
  });

  it('expectMessage and expectClose fail with clear messages; expectNoMessage passes on silence', async () => {
    const module = await compile(Test.createTestingModule({ imports: [AppModule] }).overrideProvider(AuthService).useValue({ verify: () => true, userFor: () => new User('x') }));
    const app = await module.createApplication();
    const client = await TestWsClient.connect(app, '/secure', { headers: { authorization: 'x' } });
    assert.equal(await client.expectMessage(), 'Hello, x');
    await client.expectNoMessage(50);
    await assert.rejects(client.expectMessage(50), /Expected a message within 50 ms, but none arrived/);
    await assert.rejects(client.expectClose(1000, 50), /Expected the connection to close with 1000 within 50 ms, but it is still open/);
    await module.get(BroadcastService).broadcastText('to everyone');
    await assert.rejects(client.expectNoMessage(1_000), /Expected no message for 1000 ms, got text "to everyone"/);
    const closing = client.expectClose(1001);
    await module.close();
    assert.equal((await closing).code, 1001);
  });

  it('sets the application up before it listens (configure): a global guard on routes and handshakes, CORS', async () => {
    @Injectable()
    class NeedsPass implements Guard {
      readonly seen: string[] = [];
      canActivate(ctx: ExecutionContext) {
        this.seen.push(ctx.kind);
        return ctx.headers.get('x-pass') === 'yes';
      }
    }
    const guard = new NeedsPass();
    const module = await compile(
      Test.createTestingModule({ imports: [AppModule] }).overrideProvider(AuthService).useValue({ verify: () => true, userFor: () => new User('ann') }),
    );
    const app = await module.createApplication({ configure: (app) => app.useGlobalGuards(guard).enableCors({ origin: 'https://app.example' }) });
    const refused = await fetch(`${app.getUrl()}/greeting`, { headers: { origin: 'https://app.example' } });
    assert.deepEqual([refused.status, refused.headers.get('access-control-allow-origin')], [403, 'https://app.example']);
    const allowed = await fetch(`${app.getUrl()}/greeting`, { headers: { 'x-pass': 'yes' } });
    assert.deepEqual(await allowed.json(), { greeting: 'Hello' });
    await assert.rejects(TestWsClient.connect(app, '/secure', { headers: { authorization: 'x' } }), (error: unknown) => error instanceof HandshakeRefusedError && error.status === 403);
    const client = await TestWsClient.connect(app, '/secure', { headers: { authorization: 'x', 'x-pass': 'yes' } });
    assert.equal(await client.expectMessage(), 'Hello, ann');
    assert.deepEqual(guard.seen, ['http', 'http', 'handshake', 'handshake']);
  });

  it('closes the application when configure throws, and says why', async () => {
    const module = await Test.createTestingModule({ imports: [AppModule] }).compile();
    await assert.rejects(module.createApplication({ configure: () => { throw new Error('no config for you'); } }), /no config for you/);
    // Closed: another call is refused, not a second listen.
    await assert.rejects(module.createApplication(), (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_APP_STATE');
  });

  it('exposes the compiled singletons before listening', async () => {
    const module = await compile(Test.createTestingModule({ imports: [AppModule] }));
    assert.ok(module.get(AuthService) instanceof AuthService);
    assert.equal(module.get(AuthService).verify('Bearer real-secret'), true);
    assert.equal(await module.get(BroadcastService).getClientCount(), 0);
  });

  it('speaks gateway events: emit, request with its acknowledgement or error, expectEvent', async () => {
    @Injectable()
    class EventsGateway implements Gateway {
      readonly path = '/events';
      @On('greet')
      async greet(client: WsClient, name: string) {
        await client.emit('greeted', name);
        return `hello ${name}`;
      }
      @On('refuse')
      refuse() {
        throw new WsException('nope', 'Not today', { retry: false });
      }
    }
    @Module({ providers: [EventsGateway] })
    class EventsModule {}
    const module = await compile(Test.createTestingModule({ imports: [EventsModule] }));
    const app = await module.createApplication();
    const client = await TestWsClient.connect(app, '/events');
    // The event the handler emits arrives before the acknowledgement, and stays for expectEvent.
    assert.equal(await client.request('greet', 'ann'), 'hello ann');
    assert.equal(await client.expectEvent('greeted'), 'ann');
    await assert.rejects(client.request('refuse'), (error: unknown) => error instanceof WsException && error.code === 'nope' && error.details?.['retry'] === false);
    client.emit('greet', 'bob');
    assert.equal(await client.expectEvent('greeted'), 'bob');
    await assert.rejects(client.expectEvent('greeted', 200), /Expected the event "greeted", got text|within 200 ms/);
    await client.close();
  });
});
