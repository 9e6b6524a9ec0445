// The example app: `npm start`, then open the printed URL in two browser tabs.
import { createChatApp } from './app.js';
import { loadConfig } from './config.js';

const config = loadConfig(process.env);
const app = await createChatApp(config);
app.enableShutdownHooks();                       // SIGINT (Ctrl-C) / SIGTERM: close gracefully
const url = await app.listen(config.port, config.host);

const transport = config.redisUrl === undefined ? 'in-memory broadcasting' : `broadcasting through Redis at ${new URL(config.redisUrl).host}`;
console.log(`toni chat example listening on ${url} (${transport})
  open ${url}/ in two browser tabs, then try:
  curl -X POST ${url}/events/announce -H 'content-type: application/json' -d '{"message":"hello"}'
  curl ${url}/events/stats`);
