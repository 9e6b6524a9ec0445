// Fastify doing the pipeline scenario's work its own way: @fastify/cors, an onRequest hook that
// authenticates, a preHandler hook that counts calls. Callback hooks, Fastify's fastest form.
import cors from '@fastify/cors';
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { type EchoRequest, GET_PATH, PIPELINE_ORIGIN, POST_PATH, announce, echo, greet, userFor } from './workload.js';

declare module 'fastify' {
  interface FastifyRequest {
    user: { id: string } | undefined;
  }
}

const app = Fastify({ logger: false });
await app.register(cors, { origin: [PIPELINE_ORIGIN] });
app.decorateRequest('user', undefined);
let calls = 0;

app.addHook('onRequest', (request, reply, done) => {
  const user = userFor(request.headers.authorization);
  if (user === undefined) {
    void reply.code(401).send({ statusCode: 401, message: 'Sign in first', error: 'Unauthorized' });
    return;
  }
  request.user = user;
  done();
});
app.addHook('preHandler', (_request, _reply, done) => {
  calls++;
  done();
});

app.get(GET_PATH, async () => greet());
app.post<{ Body: EchoRequest }>(POST_PATH, async (request) => echo(request.body));

await app.listen({ port: 0, host: '127.0.0.1' });
announce((app.server.address() as AddressInfo).port);
process.once('exit', () => void calls);
