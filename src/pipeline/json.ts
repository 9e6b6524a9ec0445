/**
 * JSON at toni's edges, for HTTP and gateways alike. Parsing what strangers send: bounded
 * nesting, and no keys that would pollute prototypes when the value is merged into an object.
 * Serialising what handlers return: `JSON.stringify` throws for a BigInt or a cycle, and
 * silently sends `{}` for a Map or a Set; both are programming mistakes that must reach the log,
 * never the client as a wrong body.
 */

// A key can spell its letters as \u escapes (`"\u005f_proto__"`), so any escape also triggers the full check.
const POISON_KEYS = /"(?:__proto__|constructor)"\s*:|\\u/;

/** True when `text` (JSON) nests arrays and objects deeper than `maxDepth`; strings are skipped. */
export function nestsDeeperThan(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === 0x5c) index++;            // backslash: skip the escaped character
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) inString = true;
    else if (code === 0x7b || code === 0x5b) {
      if (++depth > maxDepth) return true;
    } else if (code === 0x7d || code === 0x5d) depth--;
  }
  return false;
}

/** True when parsed `value` (from `text`) carries `__proto__` or `constructor.prototype` keys. */
export function hasPoisonedKey(text: string, value: unknown): boolean {
  if (!POISON_KEYS.test(text)) return false;
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const item = pending.pop();
    if (typeof item !== 'object' || item === null) continue;
    if (Object.hasOwn(item, '__proto__')) return true;
    const ctor: unknown = Object.hasOwn(item, 'constructor') ? (item as { constructor: unknown }).constructor : undefined;
    if (typeof ctor === 'object' && ctor !== null && Object.hasOwn(ctor, 'prototype')) return true;
    for (const child of Object.values(item)) pending.push(child);
  }
  return false;
}

/**
 * The JSON text of `value`, or a `TypeError` that says why it has none. `subject` opens the
 * message (`HttpResponse.json() got`); `verb` is what the caller should do (`pass`, `return`).
 */
export function stringifyJson(value: unknown, subject: string, verb: string): string {
  const lost = typeof value === 'object' && value !== null ? silentLoss(value, verb) : undefined;
  if (lost !== undefined) throw new TypeError(`${subject} ${lost}`);
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new TypeError(`${subject} ${stringifyFailure(value, error, verb)}`, { cause: error });
  }
  if (text === undefined) throw new TypeError(`${subject} ${stringifyFailure(value, undefined, verb)}`);
  return text;
}

/**
 * Why `JSON.stringify` would send an object that is not a plain object or array as something
 * other than what it holds, or `undefined` when it would not. Looks at the top level only:
 * walking the whole value would cost every response what only a mistake needs.
 */
export function silentLoss(value: object, verb: string): string | undefined {
  if (value instanceof Map) {
    return `a Map, which JSON.stringify turns into {}: ${verb} an object or an array instead (Object.fromEntries(map) or [...map])`;
  }
  if (value instanceof Set) return `a Set, which JSON.stringify turns into {}: ${verb} an array instead ([...set])`;
  if (value instanceof WeakMap || value instanceof WeakSet) {
    return `${describe(value)}, which JSON.stringify turns into {}: ${verb} an object or an array instead`;
  }
  if (value instanceof Error) {
    return `${describe(value)}, which JSON.stringify turns into {}: throw it instead (an HttpException answers with its status)`;
  }
  return undefined;
}

/** Why `JSON.stringify(value)` threw `error`, or (without an error) returned `undefined`. */
export function stringifyFailure(value: unknown, error: unknown, verb: string): string {
  if (error === undefined) return `${describe(value)}, which JSON.stringify turns into nothing: ${verb} a JSON value (an object, array, string, number, boolean or null)`;
  const reason = error instanceof Error ? error.message.replace(/\s*\n\s*/g, ' ') : String(error);
  if (typeof value === 'bigint') return `a BigInt, which JSON cannot represent: ${verb} it as a string (String(n)) or, if it is small enough, a number`;
  if (error instanceof TypeError && /BigInt/.test(reason)) {
    return `${describe(value)} holding a BigInt, which JSON cannot represent (JSON.stringify: ${reason}): convert it to a string or a number`;
  }
  if (error instanceof TypeError && /circular/i.test(reason)) {
    return `${describe(value)} that refers to itself, which JSON cannot represent (JSON.stringify: ${reason}): ${verb} a copy without the cycle`;
  }
  return `${describe(value)} that JSON.stringify cannot serialise (${reason}): ${verb} plain objects, arrays, strings, numbers, booleans or null`;
}

/** `a Map`, `an Error`, `a BigInt`, `an object`: the value's type as a message names it. */
function describe(value: unknown): string {
  let name: string;
  if (typeof value === 'bigint') name = 'BigInt';
  else if (typeof value !== 'object' || value === null) name = typeof value;
  else {
    const proto: unknown = Object.getPrototypeOf(value);
    const ctor: unknown = typeof proto === 'object' && proto !== null ? (proto as { constructor?: unknown }).constructor : undefined;
    name = typeof ctor === 'function' && ctor.name !== '' && ctor !== Object ? ctor.name : 'object';
  }
  return `${/^[aeiouAEIOU]/.test(name) ? 'an' : 'a'} ${name}`;
}
