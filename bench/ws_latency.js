#!/usr/bin/env node
// A second load generator for the serve benchmarks, built on Node's `ws` (Debian node-ws), not
// on this project's code: N subscribers on /ws/events, one publisher on /ws/publish sending
// timestamped events at a rate, publish -> receive latency per message. It cross-checks
// `evstream loadtest` with a client whose per-message cost differs (ws parses frames in bulk,
// libwebsockets 4.1's client byte by byte). Prints one JSON object.
// Usage: NODE_PATH=/usr/share/nodejs bench/ws_latency.js --url ws://127.0.0.1:PORT
//          [--clients 100] [--rate 10] [--size 1024] [--duration 10] (seconds)
'use strict';
const WebSocket = require('ws');

function options(argv) {
  const o = {url: '', clients: 100, rate: 10, size: 1024, duration: 10};
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in o) || argv[i + 1] === undefined) throw new Error(`bad option ${argv[i]}`);
    o[key] = key === 'url' ? argv[i + 1] : Number(argv[i + 1]);
  }
  if (!o.url) throw new Error('--url is required');
  return o;
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const MARKER = Buffer.from('"data":{"t":');

function percentile(sorted, q) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

async function main() {
  const o = options(process.argv);
  const latencies = [];
  let received = 0;
  const subscribers = [];
  await Promise.all(Array.from({length: o.clients}, () => new Promise((resolve, reject) => {
    const ws = new WebSocket(`${o.url}/ws/events`);
    let greeted = false;
    ws.on('message', (data) => {
      const at = data.indexOf(MARKER);
      if (at >= 0) {
        let t = 0;
        for (let i = at + MARKER.length; data[i] >= 48 && data[i] <= 57; ++i) t = t * 10 + data[i] - 48;
        latencies.push(nowUs() - t);
        ++received;
        return;
      }
      ws.send('{"type":"pong"}');  // the greeting and every ping
      if (!greeted) {
        greeted = true;
        resolve();
      }
    });
    ws.on('error', reject);
    subscribers.push(ws);
  })));

  const publisher = new WebSocket(`${o.url}/ws/publish`);
  await new Promise((resolve, reject) => {
    publisher.on('open', resolve);
    publisher.on('error', reject);
  });
  let acked = 0;
  publisher.on('message', (data) => {
    if (data.indexOf('"ack"') >= 0) ++acked;
  });
  const pad = 'x'.repeat(Math.max(0, o.size - 48));
  const total = Math.floor(o.rate * o.duration);
  const start = nowUs();
  for (let sent = 0; sent < total; ++sent) {
    const due = start + Math.round((sent * 1e6) / o.rate);
    const wait = due - nowUs();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait / 1000));
    publisher.send(`{"type":"event","data":{"t":${nowUs()},"seq":${sent},"pad":"${pad}"}}`);
  }
  const deadline = Date.now() + 5000;
  while ((received < total * o.clients || acked < total) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  latencies.sort((a, b) => a - b);
  console.log(JSON.stringify({
    bench: 'serve-ws', clients: o.clients, rate: o.rate, size: o.size, duration_s: o.duration,
    published: total, acked, expected: total * o.clients, received,
    lost: total * o.clients - received,
    p50_us: percentile(latencies, 0.5), p99_us: percentile(latencies, 0.99),
    max_us: latencies.length ? latencies[latencies.length - 1] : 0,
  }));
  for (const ws of subscribers) ws.close();
  publisher.close();
}

main().catch((e) => {
  console.error(`ws_latency: ${e.message}`);
  process.exit(1);
});
