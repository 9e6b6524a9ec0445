/**
 * Type-level tests: `npm run typecheck` (tsc) is what runs them. Each `Expect<Equal<…>>` must
 * hold and each `@ts-expect-error` must meet an error, or the typecheck fails.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import {
  type HttpContext,
  type ModuleOptions,
  type Provider,
  type ToniApplication,
  Controller,
  Get,
  Injectable,
  InjectionToken,
  Module,
  Post,
  Put,
  inject,
} from 'tonijs';
import { type OverrideValue, Test } from 'tonijs/testing';
import * as v from 'valibot';
import { z } from 'zod';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

// The checks below only need to compile; this function is never called.
function typeChecks(app: ToniApplication): void {
  class UserService {
    find(id: string) { return { id }; }
  }
  abstract class Clock {
    abstract now(): number;
  }
  class SystemClock extends Clock {
    now() { return Date.now(); }
  }
  class NeedsArguments {
    constructor(readonly name: string) {}
  }
  const CONFIG = new InjectionToken<{ url: string }>('CONFIG');
  const PORT = new InjectionToken<number>('PORT');

  // inject() returns the token's type.
  const users = inject(UserService);
  const config = inject(CONFIG);
  const clock = inject(Clock);
  const needsArguments = inject(NeedsArguments);
  const optionalConfig = inject(CONFIG, { optional: true });
  const optionalUsers = inject(UserService, { optional: true });
  const required = inject(CONFIG, { optional: false });
  const maybe = inject(CONFIG, { optional: Math.random() > 0.5 });
  type _inject = [
    Expect<Equal<typeof users, UserService>>,
    Expect<Equal<typeof config, { url: string }>>,
    Expect<Equal<typeof clock, Clock>>,
    Expect<Equal<typeof needsArguments, NeedsArguments>>,
    Expect<Equal<typeof optionalConfig, { url: string } | undefined>>,
    Expect<Equal<typeof optionalUsers, UserService | undefined>>,
    Expect<Equal<typeof required, { url: string }>>,
    Expect<Equal<typeof maybe, { url: string } | undefined>>,
  ];
  // @ts-expect-error a string is not a token
  inject('CONFIG');
  // @ts-expect-error an object is not a token
  inject({ provide: CONFIG });

  // app.get() returns the token's type.
  const fromApp = app.get(UserService);
  const clockFromApp = app.get(Clock);
  const configFromApp = app.get(CONFIG);
  type _get = [
    Expect<Equal<typeof fromApp, UserService>>,
    Expect<Equal<typeof clockFromApp, Clock>>,
    Expect<Equal<typeof configFromApp, { url: string }>>,
  ];

  // Providers: what toni can construct, and values that match their token.
  @Module({
    providers: [
      UserService,
      { provide: CONFIG, useValue: { url: 'redis://localhost' } },
      { provide: PORT, useValue: 6379 },
      { provide: Clock, useClass: SystemClock },
      { provide: PORT, useFactory: (c: { url: string }) => c.url.length, inject: [CONFIG] },
      { provide: CONFIG, useFactory: async () => ({ url: 'redis://async' }) },
    ],
    exports: [UserService, CONFIG],
  })
  class GoodModule {}

  // @ts-expect-error a class with required constructor parameters cannot be constructed by toni
  @Module({ providers: [NeedsArguments] })
  class RequiredArgumentsModule {}

  // @ts-expect-error nor used as a useClass
  @Module({ providers: [{ provide: NeedsArguments, useClass: NeedsArguments }] })
  class RequiredArgumentsUseClassModule {}

  // @ts-expect-error useValue must have the token's type
  @Module({ providers: [{ provide: CONFIG, useValue: 42 }] })
  class WrongValueModule {}

  // @ts-expect-error useValue must have the token's type (missing property)
  @Module({ providers: [{ provide: CONFIG, useValue: { uri: 'x' } }] })
  class WrongShapeModule {}

  // @ts-expect-error useClass must produce the token's type
  @Module({ providers: [{ provide: Clock, useClass: UserService }] })
  class WrongClassModule {}

  // @ts-expect-error useFactory must return the token's type
  @Module({ providers: [{ provide: PORT, useFactory: () => 'not a number' }] })
  class WrongFactoryModule {}

  // @ts-expect-error an async useFactory must resolve to the token's type
  @Module({ providers: [{ provide: PORT, useFactory: async () => 'not a number' }] })
  class WrongAsyncFactoryModule {}

  // Options built apart from the decorator keep working.
  const sharedOptions: ModuleOptions = { providers: [UserService, { provide: PORT, useValue: 1 }] };
  @Module(sharedOptions)
  class SharedOptionsModule {}

  const typed: Provider<{ url: string }> = { provide: CONFIG, useValue: { url: 'x' } };
  // @ts-expect-error a typed provider checks its value too
  const wrongTyped: Provider<{ url: string }> = { provide: CONFIG, useValue: 1 };

  // Route handlers: with a body schema the handler must accept the schema's output.
  const Announcement = z.object({ message: z.string().min(1) });
  const Point = v.object({ x: v.number(), y: v.number() });

  @Controller('/events')
  class EventsController {
    @Post('/announce', { body: Announcement })
    announce(ctx: HttpContext<z.output<typeof Announcement>>) {
      type _body = Expect<Equal<typeof ctx.body, { message: string }>>;
      return ctx.body.message;
    }

    @Post('/wider', { body: Announcement })
    wider(ctx: HttpContext<{ message: string | number }>) {
      return ctx.body.message;
    }

    @Post('/untyped', { body: Announcement })
    untyped(ctx: HttpContext) {
      return ctx.body;
    }

    // @ts-expect-error the body type does not match the schema's output
    @Post('/wrong', { body: Announcement })
    wrong(ctx: HttpContext<{ count: number }>) {
      return ctx.body.count;
    }

    // @ts-expect-error the body needs more than the schema guarantees
    @Post('/narrower', { body: Announcement })
    narrower(ctx: HttpContext<{ message: string; author: string }>) {
      return ctx.body.author;
    }

    @Post('/length', { body: z.string().transform((text) => text.length) })
    length(ctx: HttpContext<number>) {
      return ctx.body + 1;
    }

    // @ts-expect-error the handler gets the schema's output (number), not its input (string)
    @Post('/length-input', { body: z.string().transform((text) => text.length) })
    lengthInput(ctx: HttpContext<string>) {
      return ctx.body;
    }

    @Put('/valibot', { body: Point })
    valibot(ctx: HttpContext<v.InferOutput<typeof Point>>) {
      type _body = Expect<Equal<typeof ctx.body, { x: number; y: number }>>;
      return ctx.body.x + ctx.body.y;
    }

    // @ts-expect-error any Standard Schema is checked, valibot too
    @Put('/valibot-wrong', { body: Point })
    valibotWrong(ctx: HttpContext<{ x: string }>) {
      return ctx.body.x;
    }

    // The spec's example: no schema, the handler states its body type.
    @Post('/plain')
    plain(ctx: HttpContext<{ message: string }>) {
      return ctx.body.message;
    }

    @Get('/')
    list() {
      return [];
    }

    @Get('/:id')
    find(ctx: HttpContext) {
      type _params = Expect<Equal<typeof ctx.params, Readonly<Record<string, string>>>>;
      type _body = Expect<Equal<typeof ctx.body, unknown>>;
      return ctx.params['id'];
    }
  }

  // @ts-expect-error a controller must be constructible without arguments
  @Controller('/bad')
  class BadController {
    constructor(readonly name: string) {}
  }

  // @ts-expect-error an injectable must be constructible without arguments
  @Injectable()
  class BadInjectable {
    constructor(readonly name: string) {}
  }

  // overrideProvider(token).useValue(): a fake with the members a test uses, each of the right type.
  class Mailer {
    readonly #outbox: string[] = [];
    private readonly transport = 'smtp';
    readonly settings = { host: 'mail.example.com', port: 25, tls: { enabled: true, ca: 'pem' } };
    readonly tags: string[] = [];
    async send(to: string, text: string): Promise<boolean> { this.#outbox.push(`${this.transport}:${to}:${text}`); return true; }
    count(): number { return this.#outbox.length; }
  }
  const FORMAT = new InjectionToken<(n: number) => string>('FORMAT');
  const HOSTS = new InjectionToken<string[]>('HOSTS');
  const builder = Test.createTestingModule({ providers: [Mailer] });
  builder.overrideProvider(Mailer).useValue({ send: async () => true });
  builder.overrideProvider(Mailer).useValue({ send: async (to) => to.length > 0, count: () => 0 });
  builder.overrideProvider(Mailer).useValue({ settings: { tls: { enabled: false } } });
  builder.overrideProvider(Mailer).useValue({});
  builder.overrideProvider(Mailer).useValue(new Mailer());
  builder.overrideProvider(Mailer).useFactory(() => ({ count: () => 1 }));
  builder.overrideProvider(Mailer).useFactory(async () => ({ count: () => 1 }));
  builder.overrideProvider(CONFIG).useValue({});
  builder.overrideProvider(PORT).useValue(1);
  builder.overrideProvider(FORMAT).useValue((n) => n.toFixed(2));
  builder.overrideProvider(HOSTS).useValue(['a']);
  type _override = [
    Expect<Equal<OverrideValue<number>, number>>,
    Expect<Equal<OverrideValue<(n: number) => string>, (n: number) => string>>,
    Expect<Equal<OverrideValue<string[]>, string[]>>,
    Expect<Equal<OverrideValue<{ a: { b: number } }>, { a?: { b?: number } }>>,
    // The private fields are not part of what a fake must (or may) have.
    Expect<Equal<keyof OverrideValue<Mailer>, 'settings' | 'tags' | 'send' | 'count'>>,
  ];
  // @ts-expect-error a member of the wrong type: send() resolves to a boolean
  builder.overrideProvider(Mailer).useValue({ send: async () => 'sent' });
  // @ts-expect-error a member of the wrong type: count() returns a number, not a promise
  builder.overrideProvider(Mailer).useValue({ count: async () => 1 });
  // @ts-expect-error a method whose parameters do not fit
  builder.overrideProvider(Mailer).useValue({ send: async (to: number) => to > 0 });
  // @ts-expect-error a nested member of the wrong type
  builder.overrideProvider(Mailer).useValue({ settings: { port: '25' } });
  // @ts-expect-error a member the class does not have (a typo)
  builder.overrideProvider(Mailer).useValue({ sned: async () => true });
  // @ts-expect-error a private member is not part of the public shape
  builder.overrideProvider(Mailer).useValue({ transport: 'fake' });
  // @ts-expect-error an array is taken whole: its elements keep their type
  builder.overrideProvider(HOSTS).useValue([1]);
  // @ts-expect-error a function token is taken whole: its parameters keep their type
  builder.overrideProvider(FORMAT).useValue((n: string) => n);
  // @ts-expect-error a primitive token takes its own type
  builder.overrideProvider(PORT).useValue('6379');
  // @ts-expect-error a factory's fake is checked as a value's is
  builder.overrideProvider(Mailer).useFactory(() => ({ count: () => 'one' }));
  // @ts-expect-error useClass still needs a class that produces the whole type
  builder.overrideProvider(Mailer).useClass(class { count() { return 1; } });
  // @ts-expect-error a string is not a token
  builder.overrideProvider('Mailer');

  void [GoodModule, RequiredArgumentsModule, RequiredArgumentsUseClassModule, WrongValueModule, WrongShapeModule];
  void [WrongClassModule, WrongFactoryModule, WrongAsyncFactoryModule, typed, wrongTyped, EventsController];
  void [BadController, BadInjectable, SharedOptionsModule];
}

it('compiles (the checks run in tsc)', () => {
  assert.equal(typeof typeChecks, 'function');
});
