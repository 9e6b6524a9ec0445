/**
 * Parsing JSON that strangers send: bounded nesting, and no keys that would pollute prototypes
 * when the value is merged into an object.
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
