export { ToniError, type ToniErrorCode, ERROR_CODES } from './errors.js';
export { InjectionToken, type Token, type Class, type AbstractClass } from './di/token.js';
export { inject, type InjectOptions } from './di/inject.js';
export { Module, Injectable, type ModuleOptions, type DynamicModule, type ModuleImport, type ModuleExport } from './di/module.js';
export type { Provider, ValueProvider, ClassProvider, FactoryProvider } from './di/provider.js';
export type { OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown } from './di/lifecycle.js';
export { Controller, Get, Post, Put, Patch, Delete, Options, All, type RouteOptions, type RouteDecorator, type HttpMethod } from './http/decorators.js';
export type { HttpContext, RouteParams } from './http/context.js';
export { HttpResponse, HttpResponseBuilder, type ResponseBody } from './http/http-response.js';
export { HttpException, type HttpExceptionOptions } from './http/http-exception.js';
export type { Middleware } from './http/middleware.js';
export type { CorsOptions, CorsOriginFunction, StaticCorsOrigin } from './http/cors.js';
export type {
  HttpAdapter,
  HttpExchange,
  HttpCloseOptions,
  IncomingHeaders,
  ListenAddress,
  StaticAssets,
  StaticAssetsOptions,
  StaticRequest,
} from './http/adapter.js';
export { UseGuards, UseInterceptors, UseFilters, Catch, type Guard, type Interceptor, type ExceptionFilter, type EnhancerRef } from './pipeline/enhancers.js';
export type {
  ExecutionContext,
  ExecutionKind,
  ExecutionContextBase,
  HttpExecutionContext,
  HandshakeExecutionContext,
  EventExecutionContext,
} from './pipeline/execution-context.js';
export type { GatewayChains, Chain, FilterEntry } from './pipeline/chain.js';
export { MetadataKey, type MetadataToken } from './websocket/metadata.js';
export { ToniFactory } from './app/factory.js';
export { ToniApplication, type ToniApplicationOptions } from './app/application.js';
export { ConsoleLogger, LOGGER, type Logger, type LogLevel } from './logger.js';
export type { WebSocketAdapter, WebSocketBinding } from './websocket/adapter.js';
