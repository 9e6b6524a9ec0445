import { HttpException, Injectable, InjectionToken, inject } from 'tonijs';

/** Who is behind a `/secure` connection; the class is also the key of its typed metadata. */
export class User {
  constructor(readonly id: string, readonly name: string) {}
}

/** Bearer tokens and the users they stand for. */
export const DEMO_USERS = new InjectionToken<ReadonlyMap<string, User>>('DEMO_USERS');

/**
 * Checks `Authorization: Bearer <token>` headers. A stand-in for a real identity provider:
 * it knows the demo tokens it was given.
 */
@Injectable()
export class AuthService {
  readonly #users = inject(DEMO_USERS);

  /** True when `header` carries a known token. */
  verify(header: string): boolean {
    return this.#lookup(header) !== undefined;
  }

  /** The user of a verified header; an unknown token is a 401. */
  userFor(header: string): User {
    const user = this.#lookup(header);
    if (user === undefined) throw new HttpException(401, 'Unknown token');
    return user;
  }

  #lookup(header: string): User | undefined {
    const token = /^Bearer\s+(\S+)$/i.exec(header.trim())?.[1];
    return token === undefined ? undefined : this.#users.get(token);
  }
}
