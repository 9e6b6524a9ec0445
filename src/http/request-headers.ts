import type { IncomingHeaders } from './adapter.js';

/** `Headers` with its members untyped, so that a subclass can override them (Node's typings declare them as properties). */
const HeadersBase = Headers as unknown as new () => object;
const base = Headers.prototype;

/**
 * The WHATWG `Headers` of a request, filled on demand. Reading one header — what guards and
 * handlers do — is a lookup in the server's parsed headers; the `Headers` list itself is built
 * only when something iterates, mutates or otherwise needs all of it. Node has already checked
 * names and values, and lower-cased the names, which is why reading them directly is safe.
 */
class LazyHeaders extends HeadersBase {
  readonly #raw: IncomingHeaders;
  #filled = false;

  constructor(raw: IncomingHeaders) {
    super();
    this.#raw = raw;
  }

  get(name: string): string | null {
    if (!this.#filled) {
      const value = this.#raw[name.toLowerCase()];
      // Not there: the real get() answers, and throws for a name that is no header name.
      if (value !== undefined) return typeof value === 'string' ? value : value.join(', ');
    }
    return base.get.call(this, name);
  }

  has(name: string): boolean {
    if (!this.#filled && this.#raw[name.toLowerCase()] !== undefined) return true;
    return base.has.call(this, name);
  }

  getSetCookie(): string[] {
    return base.getSetCookie.call(this.#fill());
  }

  append(name: string, value: string): void {
    base.append.call(this.#fill(), name, value);
  }

  set(name: string, value: string): void {
    base.set.call(this.#fill(), name, value);
  }

  delete(name: string): void {
    base.delete.call(this.#fill(), name);
  }

  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    base.forEach.call(this.#fill(), callback, thisArg);
  }

  entries(): IterableIterator<[string, string]> {
    return base.entries.call(this.#fill());
  }

  keys(): IterableIterator<string> {
    return base.keys.call(this.#fill());
  }

  values(): IterableIterator<string> {
    return base.values.call(this.#fill());
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return base[Symbol.iterator].call(this.#fill());
  }

  #fill(): Headers {
    const self = this as unknown as Headers;
    if (this.#filled) return self;
    this.#filled = true;
    const raw = this.#raw;
    for (const name in raw) {
      const value = raw[name];
      if (value === undefined) continue;
      try {
        if (typeof value === 'string') base.append.call(self, name, value);
        else for (const item of value) base.append.call(self, name, item);
      } catch {
        // A header the WHATWG grammar rejects (Node accepts more) is left out rather than failing the request.
      }
    }
    return self;
  }
}

/** The `Headers` of a request's parsed header record, read on demand. */
export function requestHeaders(raw: IncomingHeaders): Headers {
  return new LazyHeaders(raw) as unknown as Headers;
}
