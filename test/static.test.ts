import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Controller, Get, type HttpAdapter, HttpResponse, ToniError, type ToniApplication, ToniFactory } from 'tonijs';
import { NodeHttpAdapter } from 'tonijs/node';
import { moduleOf, rawRequest, serveApp } from './support/http.js';

const apps: ToniApplication[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

const SECRET = 'the secret outside the folder';

@Controller()
class Routes {
  @Get('/static/api')
  api() { return { route: true }; }

  @Get('/health')
  health() { return 'up'; }
}

describe('useStaticAssets', () => {
  let scratch: string;
  let publicDir: string;
  let data: Buffer;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'toni-static-'));
    publicDir = join(scratch, 'public');
    await mkdir(join(publicDir, 'sub'), { recursive: true });
    await mkdir(join(scratch, 'outside'));
    await writeFile(join(scratch, 'secret.txt'), SECRET);
    await writeFile(join(scratch, 'outside', 'secret.txt'), SECRET);
    await writeFile(join(publicDir, 'index.html'), '<h1>home</h1>');
    await writeFile(join(publicDir, 'app.js'), 'console.log(1);');
    await writeFile(join(publicDir, 'style.css'), 'body{}');
    await writeFile(join(publicDir, 'health'), 'a file named like a route');
    await writeFile(join(publicDir, '.env'), 'TOKEN=x');
    await writeFile(join(publicDir, 'résumé.txt'), 'cv');
    await writeFile(join(publicDir, 'sub', 'index.html'), '<h1>sub</h1>');
    data = randomBytes(256 * 1024);
    await writeFile(join(publicDir, 'data.bin'), data);
    await symlink(join(publicDir, 'app.js'), join(publicDir, 'inside-link.js'));
    await symlink(join(scratch, 'secret.txt'), join(publicDir, 'outside-link.txt'));
    await symlink(join(scratch, 'outside'), join(publicDir, 'linked-dir'));
  });

  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  const serveStatic = (prefix = '/static', configure: (app: ToniApplication) => void = () => {}) =>
    serveApp(apps, moduleOf([Routes]), (app) => {
      configure(app);
      app.useStaticAssets(pathToFileURL(publicDir), { prefix });
    });

  it('serves files with their MIME type, as a folder URL (file:) or a path', async () => {
    const { url } = await serveStatic();
    for (const [path, type, body] of [
      ['/static/index.html', 'text/html; charset=utf-8', '<h1>home</h1>'],
      ['/static/app.js', 'application/javascript; charset=utf-8', 'console.log(1);'],
      ['/static/style.css', 'text/css; charset=utf-8', 'body{}'],
      ['/static/r%C3%A9sum%C3%A9.txt', 'text/plain; charset=utf-8', 'cv'],
      ['/static/inside-link.js', 'application/javascript; charset=utf-8', 'console.log(1);'],
    ] as const) {
      const response = await fetch(`${url}${path}`);
      assert.equal(response.status, 200, path);
      assert.equal(response.headers.get('content-type'), type, path);
      assert.equal(await response.text(), body, path);
    }
    const bytes = await fetch(`${url}/static/data.bin`);
    assert.equal(bytes.headers.get('content-type'), 'application/octet-stream');
    assert.equal(bytes.headers.get('content-length'), String(data.length));
    assert.ok(Buffer.from(await bytes.arrayBuffer()).equals(data));

    const byPath = await serveApp(apps, moduleOf([]), (app) => app.useStaticAssets(publicDir, { prefix: '/files' }));
    assert.equal(await (await fetch(`${byPath.url}/files/app.js`)).text(), 'console.log(1);');
  });

  it('answers If-None-Match and If-Modified-Since with 304 and no body', async () => {
    const { url, port } = await serveStatic();
    const first = await fetch(`${url}/static/app.js`);
    const etag = first.headers.get('etag');
    const lastModified = first.headers.get('last-modified');
    assert.ok(etag !== null && lastModified !== null);
    await first.arrayBuffer();
    // Raw requests, as a browser revalidates: fetch() adds cache-control: no-cache to conditional requests, which asks for a fresh copy.
    const byTag = await rawRequest(port, `GET /static/app.js HTTP/1.1\r\nhost: x\r\nif-none-match: ${etag}\r\nconnection: close\r\n\r\n`);
    assert.equal(byTag.status, 304);
    assert.equal(byTag.body, '');
    assert.equal(byTag.headers.get('etag'), etag);
    assert.equal(byTag.headers.get('content-length'), undefined);
    const byDate = await rawRequest(port, `GET /static/app.js HTTP/1.1\r\nhost: x\r\nif-modified-since: ${lastModified}\r\nconnection: close\r\n\r\n`);
    assert.equal(byDate.status, 304);
    assert.equal(byDate.body, '');
    const stale = await fetch(`${url}/static/app.js`, { headers: { 'if-none-match': '"another"' } });
    assert.equal(stale.status, 200);
    await stale.arrayBuffer();
  });

  it('answers Range with 206 and the bytes asked for, an unsatisfiable one with 416', async () => {
    const { url } = await serveStatic();
    const part = await fetch(`${url}/static/data.bin`, { headers: { range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 100-199/${data.length}`);
    assert.equal(part.headers.get('content-length'), '100');
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(data.subarray(100, 200)));
    const suffix = await fetch(`${url}/static/data.bin`, { headers: { range: 'bytes=-10' } });
    assert.equal(suffix.status, 206);
    assert.ok(Buffer.from(await suffix.arrayBuffer()).equals(data.subarray(data.length - 10)));
    const beyond = await fetch(`${url}/static/data.bin`, { headers: { range: `bytes=${data.length + 5}-` } });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers.get('content-range'), `bytes */${data.length}`);
    assert.equal(((await beyond.json()) as { statusCode: number }).statusCode, 416);
  });

  it('answers HEAD with the headers and no body', async () => {
    const { port } = await serveStatic();
    const head = await rawRequest(port, 'HEAD /static/data.bin HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(data.length));
    assert.equal(head.body, '');
  });

  it('never serves a file outside the folder: .. raw, percent-encoded, double-encoded, with backslashes or NUL, and symlinks that point out', async () => {
    const { port } = await serveStatic();
    const attempts = [
      '/static/../secret.txt',
      '/static/../../secret.txt',
      '/static/%2e%2e/secret.txt',
      '/static/%2E%2E%2Fsecret.txt',
      '/static/..%2fsecret.txt',
      '/static/sub/..%2F..%2Fsecret.txt',
      '/static/%252e%252e%252fsecret.txt',
      '/static/..%5csecret.txt',
      '/static/..\\secret.txt',
      '/static/secret.txt%00.html',
      '/static/outside-link.txt',
      '/static/linked-dir/secret.txt',
      '/static/.env',
    ];
    for (const path of attempts) {
      const response = await rawRequest(port, `GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
      assert.equal(response.status, 404, path);
      assert.doesNotMatch(response.body, /secret outside|TOKEN/, path);
      assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8', `${path}: toni's own 404`);
    }
  });

  it('redirects a folder to its URL with a slash, serves its index, and never redirects off-site', async () => {
    const { url, port } = await serveStatic();
    const folder = await fetch(`${url}/static/sub`, { redirect: 'manual' });
    assert.equal(folder.status, 301);
    assert.equal(folder.headers.get('location'), '/static/sub/');
    assert.equal(await (await fetch(`${url}/static/sub/`)).text(), '<h1>sub</h1>');
    const root = await fetch(`${url}/static`, { redirect: 'manual' });
    assert.equal(root.status, 301);
    assert.equal(root.headers.get('location'), '/static/');
    assert.equal(await (await fetch(`${url}/static/`)).text(), '<h1>home</h1>');
    const atRoot = await serveApp(apps, moduleOf([]), (app) => app.useStaticAssets(publicDir));
    const sneaky = await rawRequest(atRoot.port, 'GET //sub HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    assert.equal(sneaky.status, 301);
    assert.equal(sneaky.headers.get('location'), '/sub/');
    assert.ok(port > 0);
  });

  it('routes win over files; what is neither is toni’s 404; only GET and HEAD are served', async () => {
    const { url } = await serveApp(apps, moduleOf([Routes]), (app) => app.useStaticAssets(publicDir));
    assert.equal(await (await fetch(`${url}/health`)).json(), 'up');
    assert.equal(await (await fetch(`${url}/app.js`)).text(), 'console.log(1);');
    const missing = await fetch(`${url}/missing.js`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { statusCode: 404, message: 'Cannot GET /missing.js', error: 'Not Found' });
    assert.equal((await fetch(`${url}/app.js`, { method: 'POST' })).status, 404);
  });

  it('sends files through the pipeline: middleware sees and changes them, CORS headers are added', async () => {
    const { url } = await serveStatic('/static', (app) => {
      app.use(async (_ctx, next) => HttpResponse.from(await next()).header('x-served-by', 'toni').build());
      app.enableCors({ origin: 'https://app.example.com' });
    });
    const response = await fetch(`${url}/static/app.js`, { headers: { origin: 'https://app.example.com' } });
    assert.equal(response.headers.get('x-served-by'), 'toni');
    assert.equal(response.headers.get('access-control-allow-origin'), 'https://app.example.com');
    assert.equal(await response.text(), 'console.log(1);');
  });

  it('streams from disk: the response body is a file stream, not the file in memory', async () => {
    const assets = new NodeHttpAdapter().staticAssets(publicDir, {});
    const response = await assets.serve({ method: 'GET', headers: {}, path: '/data.bin' }, '/data.bin');
    assert.ok(response !== undefined);
    assert.ok(response.body instanceof Readable, 'a Readable, read chunk by chunk as the socket drains');
    let received = 0;
    for await (const chunk of response.body as Readable) received += (chunk as Buffer).length;
    assert.equal(received, data.length);
  });

  it('refuses a folder that does not exist, a file, and an adapter that cannot serve files', async () => {
    const app = await ToniFactory.create(moduleOf([]), undefined, { logger: false });
    apps.push(app);
    assert.throws(() => app.useStaticAssets(join(scratch, 'nope')), (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_INVALID_OPTION' && /does not exist/.test(error.message));
    assert.throws(() => app.useStaticAssets(join(scratch, 'secret.txt')), /is a file, not a folder/);
    assert.throws(() => app.useStaticAssets(publicDir, { dotfiles: 'show' as never }), /dotfiles must be/);
    const bare: HttpAdapter = { listen: () => Promise.reject(new Error('unused')), close: () => Promise.resolve() };
    const other = await ToniFactory.create(moduleOf([]), bare, { logger: false });
    assert.throws(() => other.useStaticAssets(publicDir), /needs an HTTP adapter that serves files/);
  });
});
