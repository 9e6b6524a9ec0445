// NestJS on its default platform (Express), as `nest new` sets it up. Legacy decorators:
// this folder has its own tsconfig.json, which the orchestrator hands to tsx.
import 'reflect-metadata';
import { Body, Controller, Get, HttpCode, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { type EchoRequest, type EchoResponse, GET_PATH, POST_PATH, announce, echo, greet } from '../workload.js';

@Controller()
class BenchController {
  @Get(GET_PATH)
  hello(): { message: string } {
    return greet();
  }

  // Nest answers POST with 201 by default; the other servers answer 200.
  @Post(POST_PATH)
  @HttpCode(200)
  echo(@Body() body: EchoRequest): EchoResponse {
    return echo(body);
  }
}

@Module({ controllers: [BenchController] })
class AppModule {}

const app = await NestFactory.create<NestExpressApplication>(AppModule, { logger: false });
await app.listen(0, '127.0.0.1');
announce(((app.getHttpServer() as Server).address() as AddressInfo).port);
