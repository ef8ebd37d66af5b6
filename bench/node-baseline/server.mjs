// The baseline peer for Jamsocket's benchmarks: rooms by path and verbatim broadcast, the way a
// hand-written Node.js service would do it with the `ws` package.
//
//   node server.mjs PORT
//
// GET /ws/<room> joins a room. Every message is broadcast verbatim to every client of the room,
// the sender included, text as text and binary as binary: what examples/broadcast-echo does, so
// one load generator drives both. GET /status answers `ok`.
import http from "node:http";
import { WebSocketServer } from "ws";

const port = Number(process.argv[2] || 8090);
const rooms = new Map();
const server = http.createServer((req, res) => {
  if (req.url === "/status") { res.end("ok"); return; }
  res.statusCode = 404; res.end();
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

server.on("upgrade", (req, socket, head) => {
  const match = /^\/ws\/([A-Za-z0-9._~-]{1,128})$/.exec(req.url);
  if (!match) { socket.destroy(); return; }
  wss.handleUpgrade(req, socket, head, (ws) => join(ws, match[1]));
});

function join(ws, roomId) {
  let room = rooms.get(roomId);
  if (!room) { room = new Set(); rooms.set(roomId, room); }
  room.add(ws);
  ws.on("message", (data, isBinary) => {
    for (const client of room) client.send(data, { binary: isBinary });
  });
  ws.on("close", () => {
    room.delete(ws);
    if (room.size === 0) rooms.delete(roomId);
  });
}

server.listen(port, "127.0.0.1", () => console.log(`node baseline listening on ${port}`));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
