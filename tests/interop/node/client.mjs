// Node's `ws` client against a wsroute app: `node client.mjs ws://127.0.0.1:PORT`.
// Prints one JSON line with what the client saw; tests/interop/test_node.py checks it.
// Written as a ws user would: EventEmitter API, Buffers, `unexpected-response`.
import { createRequire } from "node:module";
import WebSocket from "ws";

const BASE = process.argv[2];
const STEP_TIMEOUT_MS = 5000;
const TOTAL_TIMEOUT_MS = 30000;

const overall = setTimeout(() => {
  console.error(`client.mjs: no outcome within ${TOTAL_TIMEOUT_MS} ms`);
  process.exit(2);
}, TOTAL_TIMEOUT_MS);

function withTimeout(promise, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

// A ws client with promises for its opening, its messages (in order) and its close.
function connect(path) {
  const ws = new WebSocket(BASE + path);
  const queue = [];
  const waiting = [];
  const conn = { ws };
  ws.on("message", (data, isBinary) => {
    const message = { data, isBinary };
    const next = waiting.shift();
    if (next) next(message); else queue.push(message);
  });
  conn.opened = withTimeout(new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  }), `opening of ${path}`);
  conn.closed = withTimeout(new Promise((resolve) => {
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() }));
  }), `close of ${path}`);
  conn.next = () => withTimeout(
    queue.length ? Promise.resolve(queue.shift()) : new Promise((resolve) => waiting.push(resolve)),
    `message on ${path}`);
  return conn;
}

// A handshake the server refuses: ws hands the HTTP response to `unexpected-response`.
function refused(path) {
  const ws = new WebSocket(BASE + path);
  return withTimeout(new Promise((resolve, reject) => {
    ws.once("open", () => reject(new Error(`${path} was accepted`)));
    ws.once("error", reject);
    ws.once("unexpected-response", (req, res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => {
        resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() });
        req.destroy();
      });
    });
  }), `refusal of ${path}`);
}

function bytes(n) {
  const data = Buffer.alloc(n);
  for (let i = 0; i < n; i++) data[i] = (i * 7 + (i >> 8)) & 0xff;
  return data;
}

function describeBinary(sent, reply) {
  return { isBinary: reply.isBinary, length: reply.data.length, equal: Buffer.compare(sent, reply.data) === 0 };
}

async function scenario() {
  const out = { ws: createRequire(import.meta.url)("ws/package.json").version };

  // A path route with an int converter: text and binary both ways.
  let conn = connect("/items/7?token=t1");
  await conn.opened;
  conn.ws.send("hello");
  const text = await conn.next();
  out.items = { text: text.data.toString(), textIsBinary: text.isBinary };
  const small = bytes(256);
  const large = bytes(100000);  // > 65535: a 64-bit payload length on the wire
  conn.ws.send(small);
  out.items.small = describeBinary(small, await conn.next());
  conn.ws.send(large);
  out.items.large = describeBinary(large, await conn.next());
  conn.ws.close(1000, "bye");
  out.items.closed = await conn.closed;

  // Refused before the upgrade: a bad int (404) and a missing token (401).
  out.badItem = await refused("/items/x?token=t1");
  out.noToken = await refused("/items/1");

  // First-message routing, then @on dispatch.
  conn = connect("/play?token=t1");
  await conn.opened;
  conn.ws.send(JSON.stringify({ type: "join" }));
  out.play = { joined: JSON.parse((await conn.next()).data) };
  conn.ws.send(JSON.stringify({ type: "move", to: "e4" }));
  out.play.moved = JSON.parse((await conn.next()).data);
  conn.ws.close();
  out.play.closed = await conn.closed;

  // A first message naming no route: closed by the server with 1008 and a reason.
  conn = connect("/play?token=t1");
  await conn.opened;
  conn.ws.send(JSON.stringify({ type: "dance" }));
  out.badFirst = await conn.closed;

  return out;
}

scenario().then(
  (out) => {
    clearTimeout(overall);
    console.log(JSON.stringify({ ok: true, ...out }));
  },
  (err) => {
    clearTimeout(overall);
    console.log(JSON.stringify({ ok: false, error: String((err && err.stack) || err) }));
    process.exitCode = 1;
  },
);
