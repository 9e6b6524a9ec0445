import type { AbstractClass } from '../di/token.js';

/**
 * A typed key for per-client metadata set during the handshake.
 *
 * @example
 * export const TENANT = new MetadataKey<string>('tenant');
 * handshake.setMetadata(TENANT, 'acme');          // in onHandshake
 * const tenant = client.getMetadata(TENANT);       // string | undefined
 */
export class MetadataKey<T> {
  declare readonly __type?: T;
  readonly description: string;

  constructor(description: string) {
    this.description = description;
  }

  toString(): string {
    return `MetadataKey(${this.description})`;
  }
}

/** A metadata key: a `MetadataKey<T>`, or a class whose instances are stored under it. */
export type MetadataToken<T> = MetadataKey<T> | AbstractClass<T>;

/** Per-client metadata, read-only once the client is connected. */
export interface MetadataReader {
  getMetadata<T>(key: MetadataToken<T>): T | undefined;
}
