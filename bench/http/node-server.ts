// The floor: bare node:http, doing by hand what the frameworks do for the two routes.
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type EchoRequest, GET_PATH, POST_PATH, announce, echo, greet } from './workload.js';

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === GET_PATH) {
    sendJson(res, 200, greet());
  } else if (req.method === 'POST' && req.url === POST_PATH) {
    readJson(req).then(
      (body) => sendJson(res, 200, echo(body as EchoRequest)),
      () => sendJson(res, 400, { statusCode: 400, message: 'Malformed JSON body' }),
    );
  } else {
    sendJson(res, 404, { statusCode: 404, message: 'Not Found' });
  }
});

server.listen(0, '127.0.0.1', () => announce((server.address() as AddressInfo).port));

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        reject(error);
      }
    });
    req.on('error', reject);
  });
}
