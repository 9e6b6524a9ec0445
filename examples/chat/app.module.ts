import { type DynamicModule, Module } from 'tonijs';
import { BroadcastModule, type BroadcastTransport } from 'tonijs/websocket';
import { AuthService, DEMO_USERS, User } from './auth.service.js';
import { BackgroundJobs } from './background-jobs.js';
import { ChatGateway } from './chat.gateway.js';
import { ClientModuleController } from './client-module.controller.js';
import { EchoGateway } from './echo.gateway.js';
import { EventsController } from './events.controller.js';
import { NotificationService } from './notification.service.js';
import { SecureGateway } from './secure.gateway.js';

/** Options of `AppModule.forRoot`. */
export interface AppModuleOptions {
  /** How broadcasts reach other instances; in-memory (this process only) when absent. */
  transport?: BroadcastTransport | undefined;
  /** The bearer token `/secure` accepts, for the demo user Ada. */
  demoToken: string;
}

/** The whole example: three gateways, the HTTP endpoints, and what they share. */
@Module({
  controllers: [ClientModuleController, EventsController],
  providers: [ChatGateway, EchoGateway, SecureGateway, NotificationService, AuthService, BackgroundJobs],
})
export class AppModule {
  static forRoot(options: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      // The last 500 messages of each room (two minutes at most) are kept, so that a page that
      // lost its connection gets what it missed when it is back (docs/history.md).
      imports: [BroadcastModule.forRoot({ ...(options.transport && { transport: options.transport }), history: { size: 500, ttl: 120_000 } })],
      providers: [{ provide: DEMO_USERS, useValue: new Map([[options.demoToken, new User('u-1', 'Ada')]]) }],
    };
  }
}
