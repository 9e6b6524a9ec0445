/**
 * Turning a handler's value into JSON text, and saying plainly why a value has none.
 * `JSON.stringify` throws for a BigInt or a cycle, and silently sends `{}` for a Map or a Set:
 * both are programming mistakes that must reach the log, never the client as a wrong body.
 */

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
