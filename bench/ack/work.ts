// The work every server does per request, so that the frameworks are compared, not the handlers:
// validate the payload with the same zod schema, answer with a small object.
import { z } from 'zod';

export const Add = z.object({ a: z.number(), b: z.number(), text: z.string().max(100) });

export type AddResult = { sum: number; length: number };

export function add(data: z.output<typeof Add>): AddResult {
  return { sum: data.a + data.b, length: data.text.length };
}

/** Server → orchestrator. */
export type AckServerReport = { type: 'ready'; port: number; path: string; protocol: AckProtocol } | { type: 'cpu'; micros: number };
/** Orchestrator → server. */
export type AckServerCommand = { type: 'mark' } | { type: 'cpu' };
/** How a load client asks: tonijs's envelope with ids, Socket.IO's emitWithAck, or NestJS's send-and-await-the-reply. */
export type AckProtocol = 'tonijs' | 'socket.io' | 'nestjs';

/** Reports CPU since the last `mark`; exits with the parent. */
export function serveCommands(ready: Extract<AckServerReport, { type: 'ready' }>): void {
  let mark = process.cpuUsage();
  process.on('message', (command: AckServerCommand) => {
    if (command.type === 'mark') mark = process.cpuUsage();
    else {
      const used = process.cpuUsage(mark);
      process.send!({ type: 'cpu', micros: used.user + used.system } satisfies AckServerReport);
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.once('SIGTERM', () => process.exit(0));
  process.send!(ready);
}
