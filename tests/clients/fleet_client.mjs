// A Socket.IO device written the way the shop's Flutter app's sync service works (seed 004),
// with Node's socket.io-client: it connects with its `clientId` (and `last_seq`/`epoch` when
// resuming) in the auth payload, emits events with or without an acknowledgement, hears every
// event the fleet sends, and confirms when it is asked to become master, as the app does.
//
// The test that started it says what to do, one JSON command a line on stdin, and reads one
// JSON report a line on stdout; the commands are those of fleet_client.py (see there). Every
// wait has a timeout; a failure prints {"failed": why} and exits non-zero.

import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const WAIT = 10_000;
const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (i % 2 === 0 ? [...pairs, [arg.replace(/^--/, ""), all[i + 1]]] : pairs), []),
);
// `polling` starts on long-polling and upgrades; `polling-only` never upgrades.
const transports = {
  websocket: ["websocket"],
  polling: ["polling", "websocket"],
  "polling-only": ["polling"],
}[args.transport];
const device = args.device;

const say = (fields) => console.log(JSON.stringify(fields));
const fail = (why) => {
  say({ failed: why });
  process.exit(1);
};

const matches = (data, match) =>
  data !== null && typeof data === "object" && Object.entries(match).every(([k, v]) => JSON.stringify(data[k]) === JSON.stringify(v));

let socket = null;
let events = [];
let heard = () => {};

function connect(auth) {
  if (socket) socket.disconnect();
  events = [];
  socket = io(args.url, { transports, auth, reconnection: false, timeout: WAIT, forceNew: true });
  const mine = socket;
  mine.onAny((name, data) => {
    events.push([name, data]);
    heard();
    if (name === "role_change" && matches(data, { device_id: device, new_role: "master" })) {
      mine.emit("role_change_ack", { device_id: device, new_role: "master", status: "success" });
    }
  });
  return new Promise((resolve, reject) => {
    mine.on("connect", () => resolve(mine.io.engine.transport.name));
    mine.on("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
  });
}

async function upgraded() {
  if (socket.io.engine.transport.name === "websocket") return "websocket";
  await new Promise((resolve, reject) => {
    socket.io.engine.once("upgrade", resolve);
    setTimeout(() => reject(new Error("no upgrade to websocket in time")), WAIT);
  });
  return socket.io.engine.transport.name;
}

// Waits until `pick(events)` finds something, and returns it.
function take(pick) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      heard = () => {};
      reject(new Error(`not heard in time; heard ${JSON.stringify(events.map(([name]) => name))}`));
    }, WAIT);
    const look = () => {
      const found = pick(events);
      if (found !== undefined) {
        clearTimeout(timer);
        heard = () => {};
        resolve(found);
      }
    };
    heard = look;
    look();
  });
}

const expect = (event, match) =>
  take((all) => {
    const at = all.findIndex(([name, data]) => name === event && matches(data, match));
    return at >= 0 ? all.splice(at, 1)[0][1] : undefined;
  });

const until = (event) =>
  take((all) => {
    const at = all.findIndex(([name]) => name === event);
    return at >= 0 ? all.splice(0, at + 1) : undefined;
  });

const commands = createInterface({ input: process.stdin });
const lines = commands[Symbol.asyncIterator]();

async function main() {
  for (;;) {
    const { value: line, done } = await lines.next();
    if (done) return;
    const command = JSON.parse(line);
    switch (command.do) {
      case "connect":
        say({ did: "connect", transport: await connect(command.auth ?? {}) });
        break;
      case "upgraded":
        say({ did: "upgraded", transport: await upgraded() });
        break;
      case "call":
        say({ did: "call", reply: await socket.timeout(WAIT).emitWithAck(command.event, command.data ?? {}) });
        break;
      case "emit":
        socket.emit(command.event, command.data ?? {});
        say({ did: "emit" });
        break;
      case "expect":
        say({ did: "expect", data: await expect(command.event, command.match ?? {}) });
        break;
      case "until":
        say({ did: "until", events: await until(command.event) });
        break;
      case "disconnect":
        socket.disconnect();
        say({ did: "disconnect" });
        break;
      case "exit":
        if (socket) socket.disconnect();
        process.exit(0);
        break;
      default:
        fail(`unknown command ${command.do}`);
    }
  }
}

main().catch((err) => fail(err.stack || String(err)));
