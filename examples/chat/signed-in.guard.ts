import { type ExecutionContext, type Guard, HttpException, Injectable, inject } from 'tonijs';
import { AuthService, User } from './auth.service.js';

/**
 * Lets in requests and handshakes with `Authorization: Bearer <token>` of a known user, and
 * passes the user on (`client.getMetadata(User)` on a gateway, `ctx.get(User)` on a route).
 * On `SecureGateway` it runs at the handshake: a refused client gets HTTP 401 before any upgrade.
 */
@Injectable()
export class SignedInGuard implements Guard {
  private readonly auth = inject(AuthService);

  canActivate(ctx: ExecutionContext) {
    const header = ctx.headers.get('authorization');
    if (!header || !this.auth.verify(header)) throw new HttpException(401, 'Send Authorization: Bearer <token>');
    ctx.set(User, this.auth.userFor(header));
    return true;
  }
}
