/**
 * The load client process: opens the clients, counts what they receive, and reports when the
 * expected frames have all arrived. Started by bench/broadcast.ts, on a CPU of its own.
 */
import { LoadShard } from './load-shard.js';
import { type LoadCommand, type LoadReport, now, onCommands, report } from './protocol.js';

const shard = new LoadShard();
shard.onFailure = (message) => {
  send({ type: 'failed', message });
  // The run cannot go on; let the IPC message leave before exiting.
  setTimeout(() => process.exit(1), 100);
};
shard.onSample = (index, at) => send({ type: 'sample', index, at });
let stray = 0;

onCommands<LoadCommand>(async (command) => {
  switch (command.type) {
    case 'connect': {
      const started = now();
      await shard.connect(command.port, command.path, command.protocol, command.count);
      return send({ type: 'connected', ms: now() - started });
    }
    case 'expect': {
      checkStray();
      const cpu = process.cpuUsage();
      const counted = shard.expect(command.frames);
      send({ type: 'armed' });
      const at = await counted;
      const used = process.cpuUsage(cpu);
      return send({ type: 'counted', at, cpuMicros: used.user + used.system });
    }
    case 'expect-samples': {
      checkStray();
      shard.expectSamples(command.samples);
      return send({ type: 'armed' });
    }
    case 'release':
      shard.release();
      return send({ type: 'released' });
    case 'close':
      checkStray();
      shard.close();
      return send({ type: 'closed' });
  }
});

function send(message: LoadReport): void {
  report(message);
}

/** Every frame must belong to a burst or a sample: more means the counts are wrong. */
function checkStray(): void {
  if (shard.stray === stray) return;
  send({ type: 'failed', message: `${shard.stray - stray} frames arrived that no burst or sample accounts for.` });
  stray = shard.stray;
}
