// NestJS 12 with @nestjs/platform-ws: a @SubscribeMessage handler returning a value, which Nest
// sends back as JSON (plain ws has no acknowledgement ids: one request in flight per client).
// Legacy decorators are applied with Reflect.decorate, as in bench/broadcast/nest-server.ts.
import 'reflect-metadata';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { Add, add, serveCommands } from './work.js';

class MathGateway {
  add(data: unknown) {
    const parsed = Add.safeParse(data);
    return parsed.success ? add(parsed.data) : { error: 'invalid_payload', issues: parsed.error.issues };
  }
}
// What tsc emits for `@SubscribeMessage('add') add(@MessageBody() data)`.
const body = (target: object, key: string | symbol) => MessageBody()(target, key, 0);
Reflect.decorate([SubscribeMessage('add'), body], MathGateway.prototype, 'add', Object.getOwnPropertyDescriptor(MathGateway.prototype, 'add'));
Reflect.decorate([WebSocketGateway({ path: '/math' })], MathGateway);

class AppModule {}
Reflect.decorate([Module({ providers: [MathGateway] })], AppModule);

const app = await NestFactory.create(AppModule, { logger: false });
app.useWebSocketAdapter(new WsAdapter(app));
await app.listen(0, '127.0.0.1');
serveCommands({ type: 'ready', port: ((app.getHttpServer() as Server).address() as AddressInfo).port, path: '/math', protocol: 'nestjs' });
