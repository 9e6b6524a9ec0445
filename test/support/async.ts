// The helpers live in src/testing (the transport conformance suite that tonijs/testing exports uses them).
export * from '../../src/testing/support/async.js';
