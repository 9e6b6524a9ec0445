import { InMemoryHub } from 'tonijs/websocket';
import { describeTransportConformance } from './support/transport-conformance.js';

// Three applications in this process, joined by one hub: the reference every transport is held to.
describeTransportConformance('InMemoryTransport (InMemoryHub)', async () => {
  const hub = new InMemoryHub();
  return { transport: () => hub.transport() };
});
