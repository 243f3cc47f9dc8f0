"""A Socket.IO device written the way the shop's Flutter app's sync service works (seed 004),
with python-socketio's asyncio client: it connects with its `clientId` (and `last_seq`/`epoch`
when resuming) in the auth payload, emits events with or without an acknowledgement, hears every
event the fleet sends, and confirms when it is asked to become master, as the app does.

The test that started it says what to do, one JSON command a line on stdin, and reads one JSON
report a line on stdout:

  {"do": "connect", "auth": {...}}              -> {"did": "connect", "transport": ...}
  {"do": "upgraded"}                            -> {"did": "upgraded", "transport": ...}
  {"do": "call", "event": E, "data": {...}}     -> {"did": "call", "reply": {...}}  (with an ack)
  {"do": "try_call", "event": E, "data": {...}} -> {"did": "try_call", "reply": {...}} or {..., "error": why}
  {"do": "emit", "event": E, "data": {...}}     -> {"did": "emit"}                  (without)
  {"do": "expect", "event": E, "match": {...}}  -> {"did": "expect", "data": {...}}
  {"do": "until", "event": E}                   -> {"did": "until", "events": [[name, data], ...]}
  {"do": "disconnect"}                          -> {"did": "disconnect"}
  {"do": "exit"}

`expect` takes the first event named E whose data has the fields of `match`; `until` takes every
event heard, in order, up to and including the first named E. Every wait has a timeout; a
failure prints {"failed": why} and exits non-zero.

The asyncio client is used because it handles events in the order they arrive (the threaded
client starts a thread per message).
"""

import argparse
import asyncio
import json
import sys
import threading

import socketio

WAIT = 10


def say(**fields):
    print(json.dumps(fields), flush=True)


def matches(data, match):
    return isinstance(data, dict) and all(data.get(k) == v for k, v in match.items())


class Device:
    def __init__(self, url, transports, device_id):
        self.url = url
        self.transports = transports
        self.device_id = device_id
        self.client = None
        self.events = []
        self.heard = asyncio.Event()

    async def connect(self, auth):
        if self.client is not None:
            await self.client.disconnect()
        client = socketio.AsyncClient(reconnection=False)
        self.client = client
        self.events = []

        @client.on("*")
        async def any_event(name, data=None):
            self.events.append((name, data))
            self.heard.set()
            if name == "role_change" and matches(data, {"device_id": self.device_id, "new_role": "master"}):
                await client.emit("role_change_ack", {"device_id": self.device_id, "new_role": "master",
                                                      "status": "success"})

        await client.connect(self.url, transports=self.transports, auth=auth, socketio_path="socket.io",
                             wait_timeout=WAIT)
        return client.transport()

    async def upgraded(self):
        for _ in range(WAIT * 100):
            if self.client.transport() == "websocket":
                return "websocket"
            await asyncio.sleep(0.01)
        raise TimeoutError("no upgrade to websocket in time")

    async def take(self, pick):
        """Waits until `pick(events)` finds something, and returns it."""
        deadline = asyncio.get_running_loop().time() + WAIT
        while True:
            found = pick(self.events)
            if found is not None:
                return found
            self.heard.clear()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"not heard in time; heard {[name for name, _ in self.events]}")
            try:
                await asyncio.wait_for(self.heard.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def expect(self, event, match):
        def pick(events):
            for i, (name, data) in enumerate(events):
                if name == event and matches(data, match):
                    return events.pop(i)[1]
            return None

        return await self.take(pick)

    async def until(self, event):
        def pick(events):
            for i, (name, _) in enumerate(events):
                if name == event:
                    taken = events[: i + 1]
                    del events[: i + 1]
                    return [list(e) for e in taken]
            return None

        return await self.take(pick)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    # `polling` starts on long-polling and upgrades; `polling-only` never upgrades.
    parser.add_argument("--transport", choices=["websocket", "polling", "polling-only"], required=True)
    parser.add_argument("--device", required=True)
    args = parser.parse_args()
    transports = {"websocket": ["websocket"], "polling": ["polling", "websocket"],
                  "polling-only": ["polling"]}[args.transport]
    device = Device(args.url, transports, args.device)
    loop = asyncio.get_running_loop()
    lines = asyncio.Queue()

    def read_commands():
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, "")

    threading.Thread(target=read_commands, daemon=True).start()
    while True:
        line = await lines.get()
        if not line:
            return
        command = json.loads(line)
        what = command["do"]
        if what == "connect":
            say(did="connect", transport=await device.connect(command.get("auth", {})))
        elif what == "upgraded":
            say(did="upgraded", transport=await device.upgraded())
        elif what == "call":
            reply = await device.client.call(command["event"], command.get("data", {}), timeout=WAIT)
            say(did="call", reply=reply)
        elif what == "try_call":
            # A call whose connection may be cut off: the reply, or why there was none.
            try:
                reply = await device.client.call(command["event"], command.get("data", {}), timeout=WAIT)
                say(did="try_call", reply=reply)
            except Exception as err:  # noqa: BLE001 - reported to the test
                say(did="try_call", error=f"{type(err).__name__}: {err}")
        elif what == "emit":
            await device.client.emit(command["event"], command.get("data", {}))
            say(did="emit")
        elif what == "expect":
            say(did="expect", data=await device.expect(command["event"], command.get("match", {})))
        elif what == "until":
            say(did="until", events=await device.until(command["event"]))
        elif what == "disconnect":
            await device.client.disconnect()
            say(did="disconnect")
        elif what == "exit":
            if device.client is not None:
                await device.client.disconnect()
            return
        else:
            raise ValueError(f"unknown command {what!r}")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as err:  # noqa: BLE001 - every failure is reported to the test
        say(failed=f"{type(err).__name__}: {err}")
        sys.exit(1)
