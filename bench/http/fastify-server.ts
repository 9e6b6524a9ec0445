// Fastify 5 with its defaults: no logger, no response schema (a plain route, as toni's is).
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { type EchoRequest, GET_PATH, POST_PATH, announce, echo, greet } from './workload.js';

const app = Fastify({ logger: false });

app.get(GET_PATH, async () => greet());
app.post<{ Body: EchoRequest }>(POST_PATH, async (request) => echo(request.body));

await app.listen({ port: 0, host: '127.0.0.1' });
announce((app.server.address() as AddressInfo).port);
