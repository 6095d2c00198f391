// The chat page: a plain browser WebSocket speaking the JSON messages of examples/chat/app.py.
"use strict";

const $ = (id) => document.getElementById(id);
let socket = null;
const members = new Set();
// Where this page stands in the room's history: "<offset>:<epoch>" of the last
// message it showed. Sent back as ?since= when it reconnects, so the server
// replays what was said meanwhile (docs/history.md).
let position = "";
let current = null; // {user, room} while the page wants to be in a room
let retry = 0;

function line(text, kind) {
  const item = document.createElement("li");
  item.textContent = text;
  if (kind) item.className = kind;
  $("log").append(item);
  item.scrollIntoView({ block: "end" });
}

function showMembers() {
  $("members").replaceChildren(
    ...[...members].sort().map((name) => {
      const item = document.createElement("li");
      item.textContent = name;
      return item;
    }),
  );
}

function connected(open) {
  $("join").disabled = open;
  $("user").disabled = open;
  $("room").disabled = open;
  $("leave").disabled = !open;
  $("text").disabled = !open;
  $("send").disabled = !open;
}

const handlers = {
  members(message) {
    members.clear();
    message.users.forEach((user) => members.add(user));
    showMembers();
    if (message.partial) line("the chat is degraded: members of other servers are not listed", "error");
  },
  history(message) {
    if (!message.recovered && position) line("some messages may be missing (history lost)", "error");
    else if (message.missed) line(`${message.missed} message(s) while you were away`, "notice");
    position = message.position;
  },
  error(message) {
    line(message.reason, "error");
  },
  join(message) {
    if (!members.has(message.user)) line(`${message.user} joined`, "notice");
    members.add(message.user);
    showMembers();
  },
  leave(message) {
    members.delete(message.user);
    line(`${message.user} left`, "notice");
    showMembers();
  },
  say(message) {
    line(`${message.user}: ${message.text}`, "say");
  },
  whisper(message) {
    line(`${message.from} (whisper): ${message.text}`, "whisper");
  },
};

function join(user, room) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = `token=${encodeURIComponent(user)}&since=${encodeURIComponent(position)}`;
  socket = new WebSocket(`${scheme}://${location.host}/rooms/${encodeURIComponent(room)}?${query}`);
  $("status").textContent = "connecting…";
  socket.addEventListener("open", () => {
    connected(true);
    retry = 0;
    $("status").textContent = `${user} in ${room}`;
  });
  socket.addEventListener("message", (event) => {
    let message = JSON.parse(event.data);
    if ("offset" in message) {
      // A room message: an envelope {topic, offset, epoch, data}.
      position = `${message.offset}:${message.epoch}`;
      message = message.data;
    }
    const handle = handlers[message.type];
    if (handle) handle(message);
  });
  socket.addEventListener("close", (event) => {
    connected(false);
    members.clear();
    showMembers();
    socket = null;
    const gone = event.code === 1000 || event.code === 1008 || current === null;
    $("status").textContent = event.code === 1000 ? "left" : `disconnected (${event.code}${event.reason ? ": " + event.reason : ""})`;
    if (!gone && retry < 20) {
      // The server went away (restart, crash): come back where we were.
      const delay = Math.min(200 * 2 ** retry, 3000);
      retry += 1;
      $("status").textContent += `, reconnecting in ${delay} ms`;
      setTimeout(() => { if (current && !socket) join(current.user, current.room); }, delay);
    }
  });
}

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  $("log").replaceChildren();
  position = "";
  retry = 0;
  current = { user: $("user").value, room: $("room").value };
  join(current.user, current.room);
});

$("leave").addEventListener("click", () => {
  current = null;
  if (socket) socket.close(1000, "bye");
});

$("say-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text || !socket) return;
  const whisper = text.match(/^\/w\s+(\S+)\s+(.+)$/);
  socket.send(JSON.stringify(whisper ? { type: "whisper", to: whisper[1], text: whisper[2] } : { type: "say", text }));
  if (whisper) line(`to ${whisper[1]} (whisper): ${whisper[2]}`, "whisper");
  $("text").value = "";
});
