export { Test, TestingModule, TestingModuleBuilder, type TestingModuleMetadata, type TestApplicationOptions, type OverrideBy, type OverrideValue } from './testing-module.js';
export { TestWsClient, HandshakeRefusedError, type TestWsClientOptions, type ReceivedMessage, type RawTestSocket } from './ws-test-client.js';
export { describeTransportConformance, type ClusterFactory, type ConformanceOptions, type ConformanceRunner } from './transport-conformance.js';
export { captureLogger, type LogEntry, type CapturingLogger } from './support/async.js';
