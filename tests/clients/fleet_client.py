"""A Socket.IO device written the way the shop's Flutter app's sync service works (seed 004):
python-socketio's client registers the device, writes, hears the fleet, answers a role change
and resumes with `last_seq`.

It talks to the test that started it through lines on stdin and stdout: it prints one JSON
object a line for each thing it saw or did, and waits for a line on stdin where the test must
act first. Every wait has a timeout; a failure exits non-zero with the reason.
"""

import argparse
import json
import queue
import sys

import socketio

WAIT = 10


def say(**fields):
    print(json.dumps(fields), flush=True)


def wait_for_test(expected):
    line = sys.stdin.readline().strip()
    if line != expected:
        raise SystemExit(f"expected {expected!r} from the test, got {line!r}")


class Device:
    def __init__(self, url, transports, device_id):
        self.url = url
        self.transports = transports
        self.device_id = device_id
        self.events = queue.Queue()
        self.client = None

    def connect(self, auth):
        client = socketio.Client(reconnection=False)
        self.client = client

        @client.on("*")
        def any_event(name, data=None):
            self.events.put((name, data))
            if name == "role_change" and data.get("device_id") == self.device_id and data.get("new_role") == "master":
                # As the app does: confirm becoming master.
                client.emit("role_change_ack", {"device_id": self.device_id, "new_role": "master",
                                                "status": "success"})

        client.connect(self.url, transports=self.transports, auth=auth, socketio_path="socket.io",
                       wait_timeout=WAIT)
        say(step="connected", transport=client.transport())

    def event(self, name, match=lambda data: True):
        while True:
            got, data = self.events.get(timeout=WAIT)
            if got == name and match(data):
                return data

    def call(self, name, data):
        return self.client.call(name, data, timeout=WAIT)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--transport", choices=["websocket", "polling"], required=True)
    parser.add_argument("--device", required=True)
    args = parser.parse_args()
    transports = ["websocket"] if args.transport == "websocket" else ["polling", "websocket"]
    device = Device(args.url, transports, args.device)

    device.connect({"clientId": args.device})
    connected = device.event("connected")
    say(step="welcomed", last_seq=connected["last_seq"], transport=device.client.transport())

    ack = device.call("device_online", {"device_id": args.device, "priority": 50})
    say(step="online", type=ack["type"], role=ack["role"], reply_to=ack.get("reply_to"))

    # The test's /ws client writes now.
    wait_for_test("written")
    update = device.event("device_updated", lambda d: d["data"]["notes"] == "from ws")
    say(step="heard", seq=update["seq"])

    ack = device.call("device_update", {"deviceId": "pc1", "data": {"notes": "from socket.io"}})
    say(step="wrote", type=ack["type"], seq=ack["seq"])
    last_seq = ack["seq"]

    # The master (the test's /ws device) shuts down: this device is elected.
    wait_for_test("master leaving")
    elected = device.event("master_elected")
    say(step="elected", new_master_id=elected["new_master_id"], term=elected["term"])

    # Offline while the fleet writes; back with last_seq, it gets exactly what it missed.
    device.client.disconnect()
    say(step="offline")
    wait_for_test("missed two")
    device.events = queue.Queue()
    device.connect({"clientId": args.device, "last_seq": last_seq})
    missed = []
    while True:
        name, data = device.events.get(timeout=WAIT)
        if name == "connected":
            break
        if name == "device_updated":
            missed.append(data["seq"])
    say(step="resumed", missed=missed)
    device.client.disconnect()


if __name__ == "__main__":
    main()
