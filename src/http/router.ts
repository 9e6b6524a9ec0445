import { ToniError } from '../errors.js';

/** The result of a lookup: a match, a path known under other methods, or nothing. */
export type RouteLookup<T> = RouteSelection<T> | { kind: 'not-found' };

type RouteSelection<T> =
  | { kind: 'found'; value: T; params: Record<string, string> }
  | { kind: 'method-not-allowed'; allowed: readonly string[] };

interface Node<T> {
  readonly statics: Map<string, Node<T>>;
  param: { name: string; node: Node<T> } | undefined;
  wildcard: { name: string; methods: Map<string, T> } | undefined;
  readonly methods: Map<string, T>;
}

const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** The method key of a route that serves every method (`@All`). */
export const ANY_METHOD = 'ALL';

/**
 * Maps method and path to a value. Static paths are one map lookup; paths with `:param`
 * segments or a trailing `*` go through a segment tree where static segments win over
 * parameters. A trailing slash is ignored; HEAD falls back to GET, and any method to an `ALL` route.
 */
export class Router<T> {
  readonly #static = new Map<string, Map<string, T>>();
  /** The lookups of static routes, built once: a hit allocates nothing. Keyed by method, then path. */
  readonly #staticHits = new Map<string, Map<string, RouteLookup<T>>>();
  readonly #root: Node<T> = createNode();

  add(method: string, path: string, value: T): void {
    const normalized = normalizePath(path);
    const segments = normalized.split('/').slice(1);
    const dynamic = segments.some((segment) => segment.startsWith(':') || segment === '*');
    const methods = dynamic ? this.#insert(segments, normalized) : getOrCreate(this.#static, normalized);
    if (methods.has(method)) {
      throw new ToniError('TONI_ERR_DUPLICATE_ROUTE', `Two handlers are registered for ${method} ${normalized}: remove or rename one of them.`);
    }
    methods.set(method, value);
    if (dynamic) return;
    const hit: RouteLookup<T> = Object.freeze({ kind: 'found', value, params: NO_PARAMS });
    getOrCreate(this.#staticHits, method).set(normalized, hit);
    // HEAD falls back to GET, unless the path has a HEAD route of its own.
    if (method === 'GET' && !methods.has('HEAD')) getOrCreate(this.#staticHits, 'HEAD').set(normalized, hit);
  }

  find(method: string, rawPath: string): RouteLookup<T> {
    const path = rawPath.length > 1 && rawPath.charCodeAt(rawPath.length - 1) === 47 ? rawPath.slice(0, -1) : rawPath;
    const hit = this.#staticHits.get(method)?.get(path);
    if (hit !== undefined) return hit;
    const allowed = new Set<string>();
    const staticMethods = this.#static.get(path);
    const staticValue = staticMethods === undefined ? undefined : pick(staticMethods, method, allowed);
    if (staticValue !== undefined) return { kind: 'found', value: staticValue, params: NO_PARAMS };
    const params: Record<string, string> = {};
    const value = match(this.#root, path.split('/'), 1, params, method, allowed);
    if (value !== undefined) return { kind: 'found', value, params };
    return allowed.size > 0 ? { kind: 'method-not-allowed', allowed: [...allowed] } : { kind: 'not-found' };
  }

  #insert(segments: string[], path: string): Map<string, T> {
    let node = this.#root;
    for (const [index, segment] of segments.entries()) {
      if (segment === '*') {
        if (index !== segments.length - 1) throw invalidRoute(path, '"*" may only be the last segment');
        node.wildcard ??= { name: '*', methods: new Map() };
        return node.wildcard.methods;
      }
      if (segment.startsWith(':')) {
        const name = segment.slice(1);
        if (!/^[A-Za-z_$][\w$]*$/.test(name)) throw invalidRoute(path, `"${segment}" is not a valid parameter name`);
        if (node.param !== undefined && node.param.name !== name) {
          throw invalidRoute(path, `parameter ":${name}" conflicts with ":${node.param.name}" at the same position in another route`);
        }
        node.param ??= { name, node: createNode() };
        node = node.param.node;
      } else {
        node = getOrCreate(node.statics, segment, () => createNode<T>());
      }
    }
    return node.methods;
  }
}

/** Joins a controller prefix and a route path with single slashes: `('/a/', 'b')` → `/a/b`. */
export function joinPaths(prefix: string, path: string): string {
  return normalizePath(`${prefix}/${path}`);
}

function normalizePath(path: string): string {
  const joined = `/${path}`.replace(/\/{2,}/g, '/');
  return joined.length > 1 && joined.endsWith('/') ? joined.slice(0, -1) : joined;
}

// Backtracks until a route has the method, so that `GET /a/b/:y` does not hide `POST /a/:x/:y`;
// the methods of paths that matched without it are collected in `allowed` for the 405.
function match<T>(node: Node<T>, segments: string[], index: number, params: Record<string, string>, method: string, allowed: Set<string>): T | undefined {
  if (index === segments.length) {
    const value = pick(node.methods, method, allowed);
    if (value !== undefined || node.wildcard === undefined) return value;
    const rest = pick(node.wildcard.methods, method, allowed);
    if (rest !== undefined) params[node.wildcard.name] = '';
    return rest;
  }
  const segment = segments[index]!;
  const child = node.statics.get(segment);
  if (child !== undefined) {
    const found = match(child, segments, index + 1, params, method, allowed);
    if (found !== undefined) return found;
  }
  if (node.param !== undefined && segment.length > 0) {
    const found = match(node.param.node, segments, index + 1, params, method, allowed);
    if (found !== undefined) {
      params[node.param.name] = decodeParam(segment);
      return found;
    }
  }
  if (node.wildcard !== undefined) {
    const found = pick(node.wildcard.methods, method, allowed);
    if (found !== undefined) params[node.wildcard.name] = decodeParam(segments.slice(index).join('/'));
    return found;
  }
  return undefined;
}

/** The value for `method` (HEAD falls back to GET, any method to ALL); without one, adds the methods there are to `allowed`. */
function pick<T>(methods: Map<string, T>, method: string, allowed: Set<string>): T | undefined {
  const value = methods.get(method) ?? (method === 'HEAD' ? methods.get('GET') : undefined) ?? methods.get(ANY_METHOD);
  if (value === undefined) {
    for (const known of methods.keys()) allowed.add(known);
    if (methods.has('GET')) allowed.add('HEAD');
  }
  return value;
}

function decodeParam(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    throw new URIError(`Malformed percent-encoding in path segment "${value}"`);
  }
}

function invalidRoute(path: string, reason: string): ToniError {
  return new ToniError('TONI_ERR_INVALID_ROUTE', `Invalid route path ${path}: ${reason}.`);
}

function createNode<T>(): Node<T> {
  return { statics: new Map(), param: undefined, wildcard: undefined, methods: new Map() };
}

function getOrCreate<K, V>(map: Map<K, V>, key: K, create: () => V = () => new Map() as V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}
