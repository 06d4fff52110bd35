#!/usr/bin/env python3
"""A webhook receiver for songd's tests: verifies Standard Webhooks signatures with Python's
own hmac/base64 (an implementation independent of songd's) and records every delivery.

    receiver.py --secret whsec_... [--port N]     # prints the port on its first line

Deliveries: any POST outside /_control. Each is recorded as
    {"id", "timestamp", "signature_valid", "content_type", "path", "body", "answered",
     "received_at"}
and answered with the current mode's status (200 unless set). Control endpoints:
    GET  /_control/deliveries          -> {"deliveries": [...]}
    POST /_control/mode {"status": 503}      answer deliveries with this status
    POST /_control/mode {"hang": true}       hold every delivery until {"hang": false}
Standard library only.
"""

import argparse
import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, key):
        self.key = key
        self.lock = threading.Lock()
        self.released = threading.Condition(self.lock)
        self.deliveries = []
        self.status = 200
        self.hang = False


def verify(key, msg_id, timestamp, body, header):
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for part in header.split(" "):
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return True
    return False


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, payload=b"{}"):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self):
            if self.path == "/_control/deliveries":
                with state.lock:
                    payload = json.dumps({"deliveries": state.deliveries}).encode()
                self.reply(200, payload)
            else:
                self.reply(404)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if self.path == "/_control/mode":
                mode = json.loads(body or b"{}")
                with state.lock:
                    if "status" in mode:
                        state.status = int(mode["status"])
                    if "hang" in mode:
                        state.hang = bool(mode["hang"])
                        state.released.notify_all()
                self.reply(200)
                return
            msg_id = self.headers.get("webhook-id", "")
            timestamp = self.headers.get("webhook-timestamp", "")
            signature = self.headers.get("webhook-signature", "")
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            record = {
                "id": msg_id,
                "timestamp": timestamp,
                "signature_valid": verify(state.key, msg_id, timestamp, body, signature),
                "content_type": self.headers.get("Content-Type", ""),
                "path": self.path,
                "body": parsed,
                "received_at": time.time(),
            }
            with state.lock:
                record["answered"] = "hang" if state.hang else state.status
                state.deliveries.append(record)
                while state.hang:
                    state.released.wait()
                status = state.status
            self.reply(status, b'{"ignored": "by songd"}')

    return Handler


class Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request, client_address):
        # songd closing a connection it timed out (the hang tests) is expected, not news.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    if not args.secret.startswith("whsec_"):
        sys.exit("the secret must start with whsec_")
    state = State(base64.b64decode(args.secret[len("whsec_"):]))
    server = Server((args.host, args.port), make_handler(state))
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
