export * from '../../src/testing/support/ws-client.js';
