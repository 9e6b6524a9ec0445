// tonijs: an @On handler with the payload schema; its return value is the acknowledgement.
import { Injectable, Module, ToniFactory } from 'tonijs';
import { NodeHttpAdapter, WsAdapter } from 'tonijs/node';
import { type Gateway, On, type WsClient } from 'tonijs/websocket';
import type { z } from 'zod';
import { Add, add, serveCommands } from './work.js';

@Injectable()
class MathGateway implements Gateway {
  readonly path = '/math';
  @On('add', { payload: Add })
  add(_client: WsClient, data: z.output<typeof Add>) {
    return add(data);
  }
}

@Module({ providers: [MathGateway] })
class AppModule {}

const app = await ToniFactory.create(AppModule, new NodeHttpAdapter(), { logger: false });
app.useWebSocketAdapter(new WsAdapter());
const url = await app.listen(0, '127.0.0.1');
serveCommands({ type: 'ready', port: Number(new URL(url).port), path: '/math', protocol: 'tonijs' });
