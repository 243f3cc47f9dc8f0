// A Socket.IO device written the way the shop's Flutter app's sync service works (seed 004),
// with Node's socket.io-client: the same steps, reports and waits as fleet_client.py.
//
// It prints one JSON object a line for each thing it saw or did, and waits for a line on stdin
// where the test must act first. Every wait has a timeout; a failure exits non-zero.

import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const WAIT = 10_000;
const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (i % 2 === 0 ? [...pairs, [arg.replace(/^--/, ""), all[i + 1]]] : pairs), []),
);
const transports = args.transport === "websocket" ? ["websocket"] : ["polling", "websocket"];
const device = args.device;

const say = (fields) => console.log(JSON.stringify(fields));
const fail = (why) => {
  console.error(why);
  process.exit(1);
};

const stdin = createInterface({ input: process.stdin });
const lines = [];
const lineWaiters = [];
stdin.on("line", (line) => (lineWaiters.length ? lineWaiters.shift()(line) : lines.push(line)));
const fromTest = (expected) =>
  new Promise((resolve) => {
    const check = (line) => (line.trim() === expected ? resolve() : fail(`expected ${expected} from the test, got ${line}`));
    lines.length ? check(lines.shift()) : lineWaiters.push(check);
  });

let events = [];
let eventWaiters = [];
function connect(auth) {
  events = [];
  eventWaiters = [];
  const socket = io(args.url, { transports, auth, reconnection: false, timeout: WAIT });
  socket.onAny((name, data) => {
    if (name === "role_change" && data.device_id === device && data.new_role === "master") {
      // As the app does: confirm becoming master.
      socket.emit("role_change_ack", { device_id: device, new_role: "master", status: "success" });
    }
    const waiter = eventWaiters.findIndex((w) => w.name === name && w.match(data));
    if (waiter >= 0) {
      eventWaiters.splice(waiter, 1)[0].resolve(data);
    } else {
      events.push([name, data]);
    }
  });
  return new Promise((resolve) => {
    socket.on("connect", () => {
      say({ step: "connected", transport: socket.io.engine.transport.name });
      resolve(socket);
    });
    socket.on("connect_error", (err) => fail(`connect_error: ${err.message}`));
    // A polling client upgrades shortly after connecting.
  });
}

function event(name, match = () => true) {
  const at = events.findIndex(([got, data]) => got === name && match(data));
  if (at >= 0) return Promise.resolve(events.splice(at, 1)[0][1]);
  return new Promise((resolve, reject) => {
    eventWaiters.push({ name, match, resolve });
    setTimeout(() => reject(new Error(`no ${name} in time`)), WAIT);
  });
}

const call = (socket, name, data) => socket.timeout(WAIT).emitWithAck(name, data);

async function upgraded(socket) {
  if (socket.io.engine.transport.name === "websocket") return;
  await new Promise((resolve, reject) => {
    socket.io.engine.once("upgrade", resolve);
    setTimeout(() => reject(new Error("no upgrade in time")), WAIT);
  });
}

async function main() {
  let socket = await connect({ clientId: device });
  await upgraded(socket);
  const connected = await event("connected");
  say({ step: "welcomed", last_seq: connected.last_seq, transport: socket.io.engine.transport.name });

  let ack = await call(socket, "device_online", { device_id: device, priority: 50 });
  say({ step: "online", type: ack.type, role: ack.role, reply_to: ack.reply_to });

  await fromTest("written");
  const update = await event("device_updated", (d) => d.data.notes === "from ws");
  say({ step: "heard", seq: update.seq });

  ack = await call(socket, "device_update", { deviceId: "pc1", data: { notes: "from socket.io" } });
  say({ step: "wrote", type: ack.type, seq: ack.seq });
  const lastSeq = ack.seq;

  await fromTest("master leaving");
  const elected = await event("master_elected");
  say({ step: "elected", new_master_id: elected.new_master_id, term: elected.term });

  socket.disconnect();
  say({ step: "offline" });
  await fromTest("missed two");
  socket = await connect({ clientId: device, last_seq: lastSeq });
  const missed = [];
  for (;;) {
    const [name, data] = await new Promise((resolve, reject) => {
      const started = Date.now();
      const poll = setInterval(() => {
        if (events.length) {
          clearInterval(poll);
          resolve(events.shift());
        } else if (Date.now() - started > WAIT) {
          clearInterval(poll);
          reject(new Error("no event in time"));
        }
      }, 5);
    });
    if (name === "connected") break;
    if (name === "device_updated") missed.push(data.seq);
  }
  say({ step: "resumed", missed });
  socket.disconnect();
  process.exit(0);
}

main().catch((err) => fail(err.stack || String(err)));
