// The chat page: a plain browser WebSocket speaking the JSON messages of examples/chat/app.py.
"use strict";

const $ = (id) => document.getElementById(id);
let socket = null;
const members = new Set();

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
  const url = `${scheme}://${location.host}/rooms/${encodeURIComponent(room)}?token=${encodeURIComponent(user)}`;
  socket = new WebSocket(url);
  $("status").textContent = "connecting…";
  socket.addEventListener("open", () => {
    connected(true);
    $("status").textContent = `${user} in ${room}`;
  });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    const handle = handlers[message.type];
    if (handle) handle(message);
  });
  socket.addEventListener("close", (event) => {
    connected(false);
    members.clear();
    showMembers();
    $("status").textContent = event.code === 1000 ? "left" : `disconnected (${event.code}${event.reason ? ": " + event.reason : ""})`;
    socket = null;
  });
}

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  $("log").replaceChildren();
  join($("user").value, $("room").value);
});

$("leave").addEventListener("click", () => {
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
