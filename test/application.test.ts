import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, it } from 'node:test';
import { Controller, Get, Injectable, Module, ToniError, ToniFactory, type ToniApplication, type WebSocketAdapter } from 'tonijs';
import { NodeHttpAdapter } from 'tonijs/node';
import { captureLogger, withTimeout } from './support/async.js';

@Controller('/health')
class HealthController {
  @Get()
  check() { return { ok: true }; }
}

@Module({ controllers: [HealthController] })
class AppModule {}

const noopWebSocketAdapter = (): WebSocketAdapter => ({ bind: async () => {}, close: async () => {} });

describe('ToniApplication', () => {
  const apps: ToniApplication[] = [];
  const create = async (...args: Parameters<typeof ToniFactory.create>) => {
    const app = await ToniFactory.create(...args);
    apps.push(app);
    return app;
  };
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  it('listens on port 0, resolves with its URL and serves requests', async () => {
    const app = await create(AppModule, new NodeHttpAdapter(), { logger: false });
    const url = await app.listen(0, '127.0.0.1');
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(app.getUrl(), url);
    assert.notEqual(new URL(url).port, '0');
    const response = await fetch(`${url}/health`);
    assert.deepEqual(await response.json(), { ok: true });
  });

  it('uses a NodeHttpAdapter when none is given', async () => {
    const app = await create(AppModule, undefined, { logger: false });
    assert.equal(app.getHttpAdapter().constructor.name, 'NodeHttpAdapter');
    const response = await fetch(`${await app.listen(0, '127.0.0.1')}/health`);
    assert.equal(response.status, 200);
  });

  it('shows a wildcard host as loopback in getUrl()', async () => {
    const app = await create(AppModule, undefined, { logger: false });
    await app.listen(0, '0.0.0.0');
    assert.match(app.getUrl(), /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await fetch(`${app.getUrl()}/health`)).status, 200);
  });

  it('refuses getUrl() before listen and a second listen()', async () => {
    const app = await create(AppModule, undefined, { logger: false });
    assert.throws(() => app.getUrl(), (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_APP_STATE');
    await app.listen(0, '127.0.0.1');
    await assert.rejects(app.listen(0, '127.0.0.1'), (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_APP_STATE');
  });

  it('rejects an invalid port with TONI_ERR_INVALID_OPTION', async () => {
    const app = await create(AppModule, undefined, { logger: false });
    await assert.rejects(app.listen(70_000), (error: unknown) => error instanceof ToniError && error.code === 'TONI_ERR_INVALID_OPTION');
  });

  it('reports a port in use as TONI_ERR_LISTEN_FAILED', async () => {
    const first = await create(AppModule, undefined, { logger: false });
    const port = Number(new URL(await first.listen(0, '127.0.0.1')).port);
    const second = await create(AppModule, undefined, { logger: false });
    await assert.rejects(second.listen(port, '127.0.0.1'), (error: unknown) => {
      return error instanceof ToniError && error.code === 'TONI_ERR_LISTEN_FAILED' && error.message.includes('EADDRINUSE');
    });
    // The failed attempt leaves the application able to listen elsewhere.
    const url = await second.listen(0, '127.0.0.1');
    assert.equal((await fetch(`${url}/health`)).status, 200);
  });

  it('accepts one WebSocket adapter, before listen only', async () => {
    const app = await create(AppModule, undefined, { logger: false });
    assert.equal(app.useWebSocketAdapter(noopWebSocketAdapter()), app);
    assert.throws(() => app.useWebSocketAdapter(noopWebSocketAdapter()), /called twice/);
    const other = await create(AppModule, undefined, { logger: false });
    await other.listen(0, '127.0.0.1');
    assert.throws(() => other.useWebSocketAdapter(noopWebSocketAdapter()), (error: unknown) => error instanceof ToniError && /before listen/.test(error.message));
  });

  it('binds the WebSocket adapter on listen and closes it on close', async () => {
    const calls: string[] = [];
    const app = await create(AppModule, undefined, { logger: false });
    app.useWebSocketAdapter({
      bind: async (binding) => { calls.push(`bind:${binding.instances.length > 0}`); },
      close: async () => { calls.push('close'); },
    });
    await app.listen(0, '127.0.0.1');
    await app.close();
    assert.deepEqual(calls, ['bind:true', 'close']);
  });

  it('close() is idempotent and stops serving', async () => {
    const app = await create(AppModule, undefined, { logger: false });
    const url = await app.listen(0, '127.0.0.1');
    const first = app.close();
    assert.equal(app.close(), first);
    await first;
    await assert.rejects(fetch(`${url}/health`));
  });

  it('logs through a replacement logger', async () => {
    const logger = captureLogger();
    const app = await create(AppModule, undefined, { logger });
    await app.listen(0, '127.0.0.1');
    assert.ok(logger.entries.some((entry) => entry.level === 'info' && entry.details['url'] === app.getUrl()));
  });

  it('closes gracefully on SIGTERM once shutdown hooks are enabled', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/signal-app.ts', import.meta.url));
    const child = spawn(process.execPath, ['--conditions=tonijs-source', '--import', 'tsx', fixture], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    const listening = new Promise<string>((resolve) => {
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
        const match = /listening:(\S+)/.exec(output);
        if (match) resolve(match[1]!);
      });
    });
    const exited = once(child, 'exit');
    try {
      const url = await withTimeout(listening, 15_000, 'the child application to listen');
      assert.equal((await fetch(`${url}/nothing`)).status, 404);
      child.kill('SIGTERM');
      const [code, signal] = await withTimeout(exited, 15_000, 'the child to exit');
      assert.match(output, /shutdown:SIGTERM/);
      assert.deepEqual([code, signal], [null, 'SIGTERM']);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('runs onApplicationShutdown even when the app never listened', async () => {
    const seen: (string | undefined)[] = [];
    @Injectable()
    class Hooked {
      onApplicationShutdown(signal?: string) { seen.push(signal); }
    }
    @Module({ providers: [Hooked] })
    class HookModule {}
    const app = await ToniFactory.create(HookModule, undefined, { logger: false });
    await app.close('SIGINT');
    assert.deepEqual(seen, ['SIGINT']);
  });
});
