import { ToniError } from '../../errors.js';

/** Who is listening, for the message: the HTTP server, or gateways on a port of their own. */
export type ListenTarget = 'http' | 'gateways';

/**
 * The `TONI_ERR_LISTEN_FAILED` for a server's `listen` error: what went wrong in words, and
 * what to do about it, for the errors people meet (a port in use, a privileged port, an
 * address that is not this machine's).
 */
export function listenFailed(error: NodeJS.ErrnoException, target: ListenTarget, host: string | undefined, port: number): ToniError {
  const where = host ?? 'all interfaces';
  const lead = `Cannot listen${target === 'gateways' ? ' for gateways' : ''} on ${host ?? '(all interfaces)'}:${port}`;
  // How to pick another port: an argument of listen(), or the gateway's own `port` field.
  const pass = (which: string) =>
    target === 'gateways' ? `give the gateway ${which} (readonly port = 0 picks a free one)` : `pass ${which} to listen() (0 picks a free one)`;
  let reason: string;
  switch (error.code) {
    case 'EADDRINUSE':
      reason = `port ${port} on ${where} is already in use, by another process or another server (EADDRINUSE): stop it, or ${pass('another port')}`;
      break;
    case 'EACCES':
      reason = port > 0 && port < 1024
        ? `permission denied for port ${port} (EACCES): ports below 1024 need elevated privileges on most systems; ` +
          `${pass('a port from 1024 up')}, or grant the privilege (CAP_NET_BIND_SERVICE on Linux)`
        : `permission denied for port ${port} on ${where} (EACCES): the system does not let this process use it; ${pass('another port')}`;
      break;
    case 'EADDRNOTAVAIL':
      reason = `${where} is not an address of this machine (EADDRNOTAVAIL): pass one of its addresses, 127.0.0.1 for this machine only or 0.0.0.0 for every interface`;
      break;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      reason = `the host name ${where} does not resolve (${error.code}): pass an IP address or a name that resolves`;
      break;
    default:
      reason = error.code ?? error.message;
  }
  return new ToniError('TONI_ERR_LISTEN_FAILED', `${lead}: ${reason}.`, { cause: error });
}
