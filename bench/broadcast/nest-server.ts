// NestJS 12 with @nestjs/platform-ws, as its docs broadcast: a @WebSocketGateway whose
// @WebSocketServer() is iterated. Nest's decorators are legacy (experimentalDecorators) ones, so
// they are applied with Reflect.decorate, as the TypeScript compiler would, and this file needs
// no tsconfig of its own.
import 'reflect-metadata';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { SubscribeMessage, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import type { WebSocketServer as WsServer } from 'ws';
import { serve } from './server-kit.js';

class FeedGateway {
  server!: WsServer;

  noop(): void {}

  broadcast(text: string): void {
    for (const client of this.server.clients) client.send(text);
  }
}
Reflect.decorate([WebSocketServer()], FeedGateway.prototype, 'server');
Reflect.decorate([SubscribeMessage('noop')], FeedGateway.prototype, 'noop', Object.getOwnPropertyDescriptor(FeedGateway.prototype, 'noop'));
Reflect.decorate([WebSocketGateway({ path: '/feed' })], FeedGateway);

class AppModule {}
Reflect.decorate([Module({ providers: [FeedGateway] })], AppModule);

const app = await NestFactory.create(AppModule, { logger: false });
app.useWebSocketAdapter(new WsAdapter(app));
await app.listen(0, '127.0.0.1');
const gateway = app.get(FeedGateway);

serve({
  port: ((app.getHttpServer() as Server).address() as AddressInfo).port,
  path: '/feed',
  protocol: 'ws',
  broadcast: (text) => gateway.broadcast(text),
  // Like the ws baseline: send queues synchronously; an async function gives something to await.
  broadcastAwaited: async (text) => gateway.broadcast(text),
  clientCount: () => gateway.server.clients.size,
});
