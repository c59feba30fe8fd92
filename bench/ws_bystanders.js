#!/usr/bin/env node
// Filtered bystanders for the filter benchmark: N subscribers on /ws/events, subscriber i with
// where=camera_id = cam-<i mod cameras>, answering pings, counting what they receive. They sit
// beside the subscribers `evstream loadtest` measures, to show what filtered neighbours cost
// unfiltered ones. Prints "ready" on stdout once every one has its greeting, then on SIGTERM one
// JSON object {bystanders, received, closed} and exits.
// Usage: NODE_PATH=/usr/share/nodejs bench/ws_bystanders.js --url ws://127.0.0.1:PORT
//          [--clients 900] [--cameras 100]
'use strict';
const WebSocket = require('ws');

function options(argv) {
  const o = {url: '', clients: 900, cameras: 100};
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in o) || argv[i + 1] === undefined) throw new Error(`bad option ${argv[i]}`);
    o[key] = key === 'url' ? argv[i + 1] : Number(argv[i + 1]);
  }
  if (!o.url) throw new Error('--url is required');
  return o;
}

const EVENT = Buffer.from('{"type":"event"');

async function main() {
  const o = options(process.argv);
  let received = 0;
  let closed = 0;
  const subscribers = [];
  await Promise.all(Array.from({length: o.clients}, (_, i) => new Promise((resolve, reject) => {
    const where = encodeURIComponent(`camera_id = cam-${i % o.cameras}`);
    const ws = new WebSocket(`${o.url}/ws/events?where=${where}`);
    let greeted = false;
    ws.on('message', (data) => {
      if (data.subarray(0, EVENT.length).equals(EVENT)) {
        ++received;
        return;
      }
      ws.send('{"type":"pong"}');  // the greeting and every ping
      if (!greeted) {
        greeted = true;
        resolve();
      }
    });
    ws.on('close', () => ++closed);
    ws.on('error', reject);
    subscribers.push(ws);
  })));
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => {
    process.stdout.write(JSON.stringify({bystanders: o.clients, received, closed}) + '\n');
    for (const ws of subscribers) ws.terminate();
    process.exit(0);
  });
}

main().catch((e) => {
  process.stderr.write(`ws_bystanders: ${e.message}\n`);
  process.exit(1);
});
