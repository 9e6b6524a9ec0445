import { type DynamicModule, Module } from '../di/module.js';
import { BroadcastService } from './broadcast-service.js';
import { BROADCAST_OPTIONS, type BroadcastModuleOptions, ConnectionManager } from './connection-manager.js';
import { PresenceService } from './presence-service.js';

/**
 * Provides `BroadcastService`, `PresenceService` and `ConnectionManager` to every module (it is global). Imported
 * plainly it is in-memory, for one process; `forRoot({ transport })` makes it cluster-wide.
 *
 * @example
 * @Module({ imports: [BroadcastModule], controllers: [EventsController], providers: [NotificationService] })
 * export class AppModule {}
 *
 * @Module({ imports: [BroadcastModule.forRoot({ transport: new RedisTransport({ url: process.env.REDIS_URL }) })] })
 * export class ClusterAppModule {}
 */
@Module({
  global: true,
  providers: [ConnectionManager, BroadcastService, PresenceService],
  exports: [BroadcastService, ConnectionManager, PresenceService],
})
export class BroadcastModule {
  static forRoot(options: BroadcastModuleOptions = {}): DynamicModule {
    return {
      module: BroadcastModule,
      providers: [{ provide: BROADCAST_OPTIONS, useValue: options }],
    };
  }
}
