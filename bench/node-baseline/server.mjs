// The baseline peer for Jamsocket's benchmarks: rooms by path and verbatim broadcast, the way a
// hand-written Node.js service would do it with the `ws` package.
//
//   node server.mjs PORT
//
// GET /ws/<room> joins a room. A text message `all:<text>` is broadcast as `<text>` to every
// client of the room (the conformance service's protocol, so one load generator drives both);
// any other text is echoed to the sender as `echo:<text>`. On connect a client gets
// `welcome <room> <n>`.
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
  if (!room) { room = { clients: new Set(), next: 1 }; rooms.set(roomId, room); }
  room.clients.add(ws);
  ws.send(`welcome ${roomId} ${room.next++}`);
  ws.on("message", (data, isBinary) => {
    if (isBinary) { ws.send(data, { binary: true }); return; }
    const text = data.toString();
    if (text.startsWith("all:")) {
      const out = text.slice(4);
      for (const client of room.clients) client.send(out);
    } else {
      ws.send(`echo:${text}`);
    }
  });
  ws.on("close", () => {
    room.clients.delete(ws);
    if (room.clients.size === 0) rooms.delete(roomId);
  });
}

server.listen(port, "127.0.0.1", () => console.log(`node baseline listening on ${port}`));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
