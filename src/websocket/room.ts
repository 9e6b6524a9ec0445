/**
 * Throws unless `room` can name a room: a non-empty, well-formed Unicode string. A lone
 * surrogate (`"\ud800"`, which `JSON.parse` happily produces) cannot be encoded as UTF-8, so it
 * would name a different room once it crossed to another instance or into Redis.
 */
export function assertRoomName(room: unknown, what = 'A room name'): asserts room is string {
  if (typeof room !== 'string' || room.length === 0) throw new TypeError(`${what} must be a non-empty string, got ${describe(room)}`);
  if (LONE_SURROGATE.test(room)) throw new TypeError(`${what} must be well-formed Unicode, got ${describe(room)} (it holds a lone surrogate)`);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : typeof value === 'object' ? String(value) : `${typeof value} ${String(value)}`;
}
