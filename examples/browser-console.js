// evstream in a browser console: paste this whole file into the devtools console (F12) of a tab
// showing the dashboard (http://127.0.0.1:8000/), or of any page once you set SERVER below.
//
// It connects to /ws/events with last=10 (the last ten stored events, then live ones), answers
// every {"type":"ping"} with {"type":"pong"} (the server closes clients that stay silent for two
// ping intervals), logs each event, and after a lost connection reconnects with backoff and
// since=<last id seen>: no gap, no duplicate. evstreamStop() ends it.
//
// From another page's origin the server must allow it: `evstream serve --allow-origin '*'` (or
// the page's origin). An https:// page can only open wss:// (serve --cert/--key). A read token
// (`serve --read-token T`) goes in the URL, since browsers cannot set WebSocket headers: set TOKEN
// below, or open the dashboard as http://host:8000/?token=T and this picks it up.
(() => {
  "use strict";
  const SERVER = location.protocol.startsWith("http")
    ? location.origin.replace(/^http/, "ws") // the page's own server: http->ws, https->wss
    : "ws://127.0.0.1:8000";
  const TOPICS = []; // e.g. ["cams", "alerts"]; empty: every topic
  const LAST = 10; // stored events to show first
  const TOKEN = new URLSearchParams(location.search).get("token") || "";

  let lastId = null; // id of the last event logged: where a reconnect resumes
  let head = null; // newest stored id when the current connection opened
  let socket = null;
  let backoff = 250;
  let timer = null;
  let stopped = false;

  function eventsUrl() {
    const query = new URLSearchParams();
    for (const topic of TOPICS) query.append("topic", topic);
    const since = lastId !== null ? lastId : head;
    if (since !== null) query.set("since", String(since));
    else query.set("last", String(LAST));
    if (TOKEN) query.set("token", TOKEN);
    return `${SERVER}/ws/events?${query}`;
  }

  function connect() {
    timer = null;
    const url = eventsUrl();
    console.log("evstream: connecting to", url.replace(/token=[^&]*/, "token=***"));
    let connectionHead = 0;
    const ws = new WebSocket(url);
    socket = ws;
    ws.onopen = () => {
      backoff = 250;
    };
    ws.onmessage = (message) => {
      const msg = JSON.parse(message.data);
      if (msg.type === "ping") {
        ws.send(JSON.stringify({ type: "pong", timestamp: msg.timestamp }));
        if ("connection_id" in msg) {
          // The first message of a connection. Until an event arrives, resume from here.
          connectionHead = msg.last_id;
          if (head === null) head = msg.last_id;
          console.log(`evstream: connected (id ${msg.connection_id}, last_id ${msg.last_id})`);
        }
      } else if (msg.type === "event") {
        if (lastId !== null && msg.id <= lastId) return; // never log an event twice
        lastId = msg.id;
        const data = msg.data || {};
        const labels = (data.objects || []).map((o) => `${o.label} ${o.confidence}`).join(", ");
        console.log(`#${msg.id} ${msg.time} [${msg.topic}] ${data.camera_id || ""} ${labels}`, msg);
      } else if (msg.type === "error") {
        console.warn("evstream: server says:", msg.message);
        if (/above the newest stored id/.test(msg.message)) {
          // The store was reset: its ids start again below ours.
          lastId = null;
          head = connectionHead;
        }
      }
    };
    ws.onclose = (close) => {
      if (socket === ws) socket = null;
      if (stopped) return;
      const delay = Math.round(backoff * (0.5 + Math.random() / 2));
      console.warn(`evstream: closed (${close.code} ${close.reason || ""}); ` +
                   `reconnecting in ${delay} ms with since=${lastId !== null ? lastId : head}`);
      timer = setTimeout(connect, delay);
      backoff = Math.min(backoff * 2, 10000);
    };
  }

  globalThis.evstreamStop = () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    if (socket !== null) socket.close(1000, "bye");
    console.log("evstream: stopped");
  };
  connect();
})();
