import { realpathSync, statSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { sep } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import send, { type SendOptions } from '@fastify/send';
import { ToniError } from '../../errors.js';
import type { StaticAssets, StaticAssetsOptions, StaticRequest } from '../../http/adapter.js';
import { HttpException } from '../../http/http-exception.js';
import { HttpResponse } from '../../http/http-response.js';

/** A file whose real path (symlinks resolved) is outside the folder: it does not exist, as far as clients know. */
class OutsideRoot extends Error {}

/** Statuses of `send` that mean "no such file here": the routes are tried next, as serve-static's fallthrough does. */
const NOT_HERE = new Set([400, 403, 404]);

/**
 * The files of one folder, on `@fastify/send` (the Fastify team's maintained fork of `send`): it
 * resolves the path, refuses `..` (raw or percent-encoded) and NUL bytes, answers conditional
 * requests (`ETag`, `Last-Modified` → 304, 412) and ranges (206, 416), and hands back status,
 * headers and a file stream instead of writing them itself, so that the response goes through
 * toni (middleware, CORS) like any other. Symlinks are followed only while they stay inside the folder.
 */
export class FolderAssets implements StaticAssets {
  readonly #root: string;
  readonly #options: SendOptions;

  constructor(dir: string | URL, options: StaticAssetsOptions) {
    this.#root = realFolder(dir);
    this.#options = {
      root: this.#root,
      index: options.index === undefined ? ['index.html'] : options.index === false ? false : typeof options.index === 'string' ? [options.index] : [...options.index],
      maxAge: options.maxAge ?? 0,
      immutable: options.immutable ?? false,
      dotfiles: options.dotfiles ?? 'ignore',
      extensions: options.extensions === undefined ? false : [...options.extensions],
      etag: options.etag ?? true,
      lastModified: options.lastModified ?? true,
      onFile: (path) => this.#assertInside(path),
    };
    assertOptions(options);
  }

  async serve(request: StaticRequest, relativePath: string): Promise<HttpResponse | undefined> {
    // The folder itself, asked for without its trailing slash: relative links in its index need one.
    if (relativePath === '') return redirectToFolder(request.path);
    let result: Awaited<ReturnType<typeof send>>;
    try {
      result = await send(request as unknown as Readable, relativePath, this.#options);
    } catch (error) {
      if (error instanceof OutsideRoot) return undefined;
      throw error;
    }
    const { statusCode, headers, stream } = result;
    if (result.type === 'file') {
      if (statusCode === 304) {
        stream.destroy();
        return HttpResponse.fromBuilder(304, lowerCased(headers), undefined);
      }
      return HttpResponse.fromBuilder(statusCode, lowerCased(headers), stream);
    }
    stream.destroy();
    if (result.type === 'directory') return redirectToFolder(request.path);
    if (NOT_HERE.has(statusCode)) return undefined;
    if (statusCode >= 500) throw result.metadata.error;
    const error = new HttpException(statusCode, statusCode === 416 ? 'The requested range is not satisfiable' : undefined);
    const answer = HttpResponse.status(statusCode).header('content-type', 'application/json; charset=utf-8');
    const range = headers['Content-Range'];
    if (range !== undefined) answer.header('content-range', String(range));
    return answer.text(JSON.stringify(error)).build();
  }

  async #assertInside(path: string): Promise<void> {
    const real = await realpath(path);
    if (real !== this.#root && !real.startsWith(this.#root + sep)) throw new OutsideRoot(`${path} leads outside ${this.#root}`);
  }
}

/**
 * A redirect to the folder's URL with its trailing slash. The location is the request's own path
 * (send only knows the part below the prefix), its leading slashes collapsed so that
 * `//evil.example` never becomes a redirect off-site.
 */
function redirectToFolder(path: string): HttpResponse {
  return HttpResponse.status(301).header('location', `/${path.replace(/^\/+/, '')}/`).build();
}

function realFolder(dir: string | URL): string {
  let path: string;
  try {
    path = dir instanceof URL ? fileURLToPath(dir) : dir;
  } catch (error) {
    throw new ToniError('TONI_ERR_INVALID_OPTION', `useStaticAssets() needs a folder (a path or a file: URL), got ${String(dir)}.`, { cause: error });
  }
  if (typeof path !== 'string' || path === '') throw new ToniError('TONI_ERR_INVALID_OPTION', `useStaticAssets() needs a folder (a path or a file: URL), got ${String(dir)}.`);
  let real: string;
  try {
    real = realpathSync(path);
  } catch (error) {
    throw new ToniError('TONI_ERR_INVALID_OPTION', `useStaticAssets(): the folder ${path} does not exist (${(error as NodeJS.ErrnoException).code ?? 'error'}).`, { cause: error });
  }
  if (!statSync(real).isDirectory()) throw new ToniError('TONI_ERR_INVALID_OPTION', `useStaticAssets(): ${path} is a file, not a folder.`);
  return real;
}

function assertOptions(options: StaticAssetsOptions): void {
  const fail = (message: string): never => {
    throw new ToniError('TONI_ERR_INVALID_OPTION', `useStaticAssets(): ${message}.`);
  };
  if (options.maxAge !== undefined && (!Number.isFinite(options.maxAge) || options.maxAge < 0)) fail(`maxAge must be a non-negative number of milliseconds, got ${String(options.maxAge)}`);
  if (options.dotfiles !== undefined && !['ignore', 'allow'].includes(options.dotfiles)) fail(`dotfiles must be 'ignore' or 'allow', got ${String(options.dotfiles)}`);
  const index = options.index;
  if (index !== undefined && index !== false && typeof index !== 'string' && !(Array.isArray(index) && index.every((name) => typeof name === 'string'))) {
    fail('index must be a file name, an array of file names, or false');
  }
  if (options.extensions !== undefined && !(Array.isArray(options.extensions) && options.extensions.every((ext) => typeof ext === 'string'))) {
    fail("extensions must be an array of extensions such as ['html']");
  }
}

function lowerCased(headers: Record<string, string | number>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const name in headers) result[name.toLowerCase()] = String(headers[name]);
  return result;
}
