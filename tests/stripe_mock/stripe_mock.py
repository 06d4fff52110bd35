#!/usr/bin/env python3
"""A local Stripe-compatible server for songd's tests (Python 3 standard library only).

Stripe itself cannot be reached from the tests, and a PaymentIntent can only reach
`succeeded` there through a real payment, so this stands in for the PaymentIntent API:

  POST /v1/payment_intents          form-encoded, Idempotency-Key honoured
  GET  /v1/payment_intents/{id}     404 resource_missing in Stripe's error shape
  POST /v1/payment_intents/{id}/confirm
                                    with the secret key, or (as Stripe.js does) the publishable
                                    key in `key` plus the intent's `client_secret`;
                                    `payment_method` pm_card_visa succeeds,
                                    pm_card_chargeDeclined / pm_card_insufficientFunds decline

and adds control endpoints under /_mock/ for the tests (JSON in, JSON out):

  POST /_mock/payment_intents           create an intent with arbitrary fields
  POST /_mock/payment_intents/{id}      change fields, e.g. {"status": "succeeded"}
  POST /_mock/faults                    {"kind": "500"|"429"|"hang"|"close"|"truncate"|"delay",
                                         "count": N, "path": "/v1/...", "seconds": S,
                                         "retry_after": R}: the next N matching requests
  POST /_mock/faults/clear              drop pending faults
  GET  /_mock/requests                  counts per path and per "METHOD path", and a log
  POST /_mock/events                    {"type": ..., "intent_id": ...}: an event document
  POST /_mock/sign                      {"payload": str, "secret": str, "timestamp": int}
  POST /_mock/reset                     forget everything

Usage:
  stripe_mock.py serve [--host 127.0.0.1] [--port 0] [--api-key sk_test_...]
      prints the bound port on stdout, then serves until killed
  stripe_mock.py sign --secret whsec_... [--timestamp T] < event.json
      prints the Stripe-Signature header value for the bytes on stdin

Secrets (API keys, client secrets, webhook secrets) are never printed.
"""

import argparse
import hashlib
import hmac
import json
import random
import re
import string
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

API_VERSION = "2024-06-20"
_ALNUM = string.ascii_letters + string.digits
_INTENT_PATH = re.compile(r"^/v1/payment_intents/([^/]+)$")
_CONFIRM_PATH = re.compile(r"^/v1/payment_intents/([^/]+)/confirm$")
# Stripe's test payment methods: None succeeds, else (decline_code, message) of the card_error.
_TEST_PAYMENT_METHODS = {
    "pm_card_visa": None,
    "pm_card_mastercard": None,
    "pm_card_chargeDeclined": ("generic_decline", "Your card was declined."),
    "pm_card_insufficientFunds": ("insufficient_funds", "Your card has insufficient funds."),
}
_MOCK_INTENT_PATH = re.compile(r"^/_mock/payment_intents/([^/]+)$")


def sign_payload(payload: bytes, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header value Stripe sends for `payload` at `timestamp`."""
    signed = str(timestamp).encode() + b"." + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _random_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(random.choice(_ALNUM) for _ in range(length))


def _stripe_error(status: int, type_: str, message: str, code: str = None, param: str = None):
    error = {"type": type_, "message": message}
    if code:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param:
        error["param"] = param
    return status, {"error": error}


def _nest_form(pairs):
    """Stripe's form encoding: a[b]=c becomes {"a": {"b": "c"}}, and a[]=x&a[]=y a list."""
    out = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        if not parts:
            continue
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(key)
        if key.endswith("[]"):
            items = node.setdefault(parts[-1], [])
            if not isinstance(items, list):
                raise ValueError(key)
            items.append(value)
        else:
            node[parts[-1]] = value
    return out


def _form_log(pairs):
    """The form as logged: one value per field, a list for a field sent several times."""
    out = {}
    for key, value in pairs:
        if key in ("client_secret", "key"):
            value = "(hidden)"
        if key in out:
            out[key] = (out[key] if isinstance(out[key], list) else [out[key]]) + [value]
        else:
            out[key] = value
    return out


# Payment method types the stand-in accepts (a subset of Stripe's, enough for the tests).
PAYMENT_METHOD_TYPES = {
    "acss_debit", "affirm", "afterpay_clearpay", "alipay", "au_becs_debit", "bacs_debit",
    "bancontact", "blik", "boleto", "card", "cashapp", "customer_balance", "eps", "fpx",
    "giropay", "grabpay", "ideal", "klarna", "konbini", "link", "oxxo", "p24", "paynow",
    "paypal", "pix", "promptpay", "revolut_pay", "sepa_debit", "sofort", "us_bank_account",
    "wechat_pay", "zip",
}


class MockState:
    """Everything the server remembers; one lock guards it all."""

    def __init__(self, api_key=None):
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.api_key = api_key
        self._clear()

    def reset(self):
        with self.lock:
            self._clear()

    def _clear(self):
        self.intents = {}
        self.idempotency = {}
        self.faults = []
        self.counts = {}
        self.method_counts = {}
        self.log = []

    def new_intent(self, fields, livemode):
        intent_id = fields.get("id") or _random_id("pi_")
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": 0,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": {"allow_redirects": "always", "enabled": True},
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic",
            "client_secret": intent_id + "_secret_" + _random_id("", 25),
            "confirmation_method": "automatic",
            "created": int(time.time()),
            "currency": "usd",
            "customer": None,
            "description": None,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": livemode,
            "metadata": {},
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": None,
            "payment_method_types": ["card"],
            "processing": None,
            "receipt_email": None,
            "setup_future_usage": None,
            "shipping": None,
            "statement_descriptor": None,
            "status": "requires_payment_method",
            "transfer_data": None,
            "transfer_group": None,
        }
        intent.update(fields)
        self.intents[intent["id"]] = intent
        return intent


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "stripe-mock/1"
    # Headers and body go out in two writes; with Nagle on, each answer waits for a delayed ACK.
    disable_nagle_algorithm = True

    # Quiet: the test output stays readable and nothing the clients send is echoed.
    def log_message(self, format, *args):
        pass

    @property
    def state(self) -> MockState:
        return self.server.state

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status, document, headers=None):
        body = json.dumps(document, indent=2).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Request-Id", _random_id("req_", 14))
        self.send_header("Access-Control-Allow-Origin", "*")  # Stripe.js calls from pages
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _dispatch(self, method):
        path = urlsplit(self.path).path
        body = self._body()
        if path.startswith("/_mock/"):
            try:
                status, document = self._control(method, path, body)
            except (ValueError, KeyError, TypeError) as error:
                status, document = 400, {"error": f"bad control request: {error}"}
            self._send(status, document)
            return
        self._api(method, path, body)

    # ---- the Stripe API ----------------------------------------------------------------

    def _api(self, method, path, body):
        state = self.state
        form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        with state.lock:
            state.counts[path] = state.counts.get(path, 0) + 1
            key = f"{method} {path}"
            state.method_counts[key] = state.method_counts.get(key, 0) + 1
            auth = self.headers.get("Authorization", "")
            state.log.append({
                "method": method,
                "path": path,
                "idempotency_key": self.headers.get("Idempotency-Key"),
                "content_type": self.headers.get("Content-Type"),
                "stripe_version": self.headers.get("Stripe-Version"),
                "bearer": auth.startswith("Bearer "),
                "form": _form_log(form),
            })
            fault = None
            for candidate in state.faults:
                if path.startswith(candidate.get("path", "/v1/")):
                    fault = candidate
                    candidate["count"] -= 1
                    if candidate["count"] <= 0:
                        state.faults.remove(candidate)
                    break
        if fault is not None and self._apply_fault(fault):
            return

        status, document, headers = self._route(method, path, form, auth)
        self._send(status, document, headers)

    def _apply_fault(self, fault):
        """True when the fault replaced the answer."""
        kind = str(fault["kind"])
        if kind in ("hang", "close"):
            if kind == "hang":
                self.state.stopping.wait(float(fault.get("seconds", 30)))
            self.close_connection = True
            return True
        if kind == "truncate":
            # Headers promise a body that never comes: the client sees a broken answer.
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"id": "pi_')
            self.wfile.flush()
            self.close_connection = True
            return True
        if kind == "delay":
            self.state.stopping.wait(float(fault.get("seconds", 1)))
            return False
        if kind == "429":
            headers = {}
            if fault.get("retry_after") is not None:
                headers["Retry-After"] = str(fault["retry_after"])
            status, document = _stripe_error(
                429, "invalid_request_error",
                "Too many requests hit the API too quickly.", code="rate_limit")
            self._send(status, document, headers)
            return True
        status = int(kind)
        status, document = _stripe_error(
            status, "api_error", "An unknown error occurred on Stripe's end.")
        self._send(status, document)
        return True

    def _route(self, method, path, form, auth):
        state = self.state
        key = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        confirm = _CONFIRM_PATH.match(path)
        if confirm and method == "POST":
            return self._confirm(confirm.group(1), dict(form), key)
        if not re.match(r"^(sk|rk)_(test|live)_[A-Za-z0-9]+$", key) or (
                state.api_key is not None and key != state.api_key):
            # Like Stripe's, but without quoting any part of the key.
            return (*_stripe_error(401, "invalid_request_error",
                                   "Invalid API Key provided."), {})
        livemode = "_live_" in key

        if path == "/v1/payment_intents" and method == "POST":
            return self._create(form, key, livemode)
        match = _INTENT_PATH.match(path)
        if match and method == "GET":
            with state.lock:
                # Real Stripe hides the other mode's objects (a 404); handing them out lets the
                # tests prove songd checks livemode itself.
                intent = state.intents.get(match.group(1))
                if intent is not None:
                    return 200, json.loads(json.dumps(intent)), {}
            return (*_stripe_error(404, "invalid_request_error",
                                   f"No such payment_intent: '{match.group(1)}'",
                                   code="resource_missing", param="intent"), {})
        return (*_stripe_error(404, "invalid_request_error",
                               f"Unrecognized request URL ({method}: {path})."), {})

    def _confirm(self, intent_id, form, key):
        """Confirms with a test payment method, as Stripe does for test-mode intents."""
        state = self.state
        publishable = form.get("key", "")
        with state.lock:
            intent = state.intents.get(intent_id)
            secret_ok = re.match(r"^(sk|rk)_(test|live)_[A-Za-z0-9]+$", key) and (
                state.api_key is None or key == state.api_key)
            client_ok = (re.match(r"^pk_(test|live)_[A-Za-z0-9]+$", publishable) and
                         intent is not None and form.get("client_secret") == intent["client_secret"])
            if not secret_ok and not client_ok:
                if re.match(r"^pk_", publishable) and intent is not None:
                    return (*_stripe_error(400, "invalid_request_error",
                                           "The client_secret provided does not match the "
                                           "client_secret associated with the PaymentIntent.",
                                           param="client_secret"), {})
                if intent is None and publishable:
                    return (*_stripe_error(404, "invalid_request_error",
                                           f"No such payment_intent: '{intent_id}'",
                                           code="resource_missing", param="intent"), {})
                return (*_stripe_error(401, "invalid_request_error",
                                       "Invalid API Key provided."), {})
            if intent is None:
                return (*_stripe_error(404, "invalid_request_error",
                                       f"No such payment_intent: '{intent_id}'",
                                       code="resource_missing", param="intent"), {})
            if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
                status, document = _stripe_error(
                    400, "invalid_request_error",
                    "You cannot confirm this PaymentIntent because it has a status of "
                    f"{intent['status']}.", code="payment_intent_unexpected_state")
                document["error"]["payment_intent"] = json.loads(json.dumps(intent))
                return status, document, {}
            method = form.get("payment_method", "")
            if method not in _TEST_PAYMENT_METHODS:
                return (*_stripe_error(400, "invalid_request_error",
                                       f"No such PaymentMethod: '{method}'",
                                       code="resource_missing", param="payment_method"), {})
            decline = _TEST_PAYMENT_METHODS[method]
            intent["payment_method"] = _random_id("pm_")
            if decline is not None:
                error = {"type": "card_error", "code": "card_declined",
                         "decline_code": decline[0], "message": decline[1]}
                intent["status"] = "requires_payment_method"
                intent["last_payment_error"] = dict(error)
                status, document = _stripe_error(402, "card_error", decline[1],
                                                 code="card_declined")
                document["error"]["decline_code"] = decline[0]
                document["error"]["payment_intent"] = json.loads(json.dumps(intent))
                return status, document, {}
            intent["status"] = "succeeded"
            intent["amount_received"] = intent["amount"]
            intent["last_payment_error"] = None
            intent["latest_charge"] = _random_id("ch_")
            return 200, json.loads(json.dumps(intent)), {}

    def _create(self, form, key, livemode):
        state = self.state
        try:
            params = _nest_form(form)
        except ValueError as error:
            return (*_stripe_error(400, "invalid_request_error", f"Invalid parameter {error}",
                                   code="parameter_invalid"), {})
        amount = params.get("amount")
        if amount is None:
            return (*_stripe_error(400, "invalid_request_error",
                                   "Missing required param: amount.",
                                   code="parameter_missing", param="amount"), {})
        if not re.fullmatch(r"[0-9]+", str(amount)) or int(amount) < 1:
            return (*_stripe_error(400, "invalid_request_error", "Invalid integer: " + str(amount),
                                   code="parameter_invalid_integer", param="amount"), {})
        currency = params.get("currency")
        if not isinstance(currency, str) or not re.fullmatch(r"[a-zA-Z]{3}", currency):
            return (*_stripe_error(400, "invalid_request_error",
                                   "Missing required param: currency.",
                                   code="parameter_missing", param="currency"), {})
        metadata = params.get("metadata", {})
        if not isinstance(metadata, dict):
            return (*_stripe_error(400, "invalid_request_error", "Invalid metadata",
                                   code="parameter_invalid", param="metadata"), {})
        apm = params.get("automatic_payment_methods", {})
        apm_enabled = isinstance(apm, dict) and apm.get("enabled") == "true"
        fields = {
            "amount": int(amount),
            "currency": currency.lower(),
            "metadata": metadata,
            "automatic_payment_methods": {
                "allow_redirects": "always",
                "enabled": apm_enabled,
            },
        }
        if "payment_method_types" in params:
            types = params["payment_method_types"]
            if not isinstance(types, list) or not types:
                return (*_stripe_error(400, "invalid_request_error",
                                       "Invalid array", code="parameter_invalid",
                                       param="payment_method_types"), {})
            for type_ in types:
                if type_ not in PAYMENT_METHOD_TYPES:
                    return (*_stripe_error(400, "invalid_request_error",
                                           f"The payment method type \"{type_}\" is invalid.",
                                           code="parameter_invalid",
                                           param="payment_method_types"), {})
            if apm_enabled:
                return (*_stripe_error(400, "invalid_request_error",
                                       "You may only specify one of these parameters: "
                                       "automatic_payment_methods, payment_method_types.",
                                       code="parameter_invalid",
                                       param="payment_method_types"), {})
            fields["payment_method_types"] = list(types)
            fields["automatic_payment_methods"] = None
        if "description" in params:
            fields["description"] = params["description"]

        idem = self.headers.get("Idempotency-Key")
        fingerprint = json.dumps(params, sort_keys=True)
        with state.lock:
            if idem:
                stored = state.idempotency.get((key, idem))
                if stored is not None:
                    if stored[0] != fingerprint:
                        return (*_stripe_error(
                            400, "idempotency_error",
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with. Try using a key other than '"
                            + idem + "' if you meant to execute a different request."), {})
                    intent = state.intents[stored[1]]
                    return 200, json.loads(json.dumps(intent)), {"Idempotent-Replayed": "true"}
            intent = state.new_intent(fields, livemode)
            if idem:
                state.idempotency[(key, idem)] = (fingerprint, intent["id"])
            return 200, json.loads(json.dumps(intent)), {"Original-Request": "req_mock"}

    # ---- control endpoints -------------------------------------------------------------

    def _control(self, method, path, body):
        state = self.state
        doc = json.loads(body.decode()) if body else {}
        if path == "/_mock/reset" and method == "POST":
            state.reset()
            return 200, {"reset": True}
        if path == "/_mock/requests" and method == "GET":
            with state.lock:
                return 200, {
                    "total": sum(state.counts.values()),
                    "counts": dict(state.counts),
                    "method_counts": dict(state.method_counts),
                    "log": list(state.log),
                }
        if path == "/_mock/faults" and method == "POST":
            kind = str(doc["kind"])
            if kind not in ("hang", "close", "truncate", "delay", "429") and not re.fullmatch(r"5\d\d", kind):
                raise ValueError(f"unknown fault kind {kind}")
            fault = {"kind": kind, "count": int(doc.get("count", 1)),
                     "path": doc.get("path", "/v1/")}
            for name in ("seconds", "retry_after"):
                if name in doc:
                    fault[name] = doc[name]
            with state.lock:
                state.faults.append(fault)
            return 200, fault
        if path == "/_mock/faults/clear" and method == "POST":
            with state.lock:
                state.faults.clear()
            return 200, {"cleared": True}
        if path == "/_mock/payment_intents" and method == "POST":
            with state.lock:
                fields = dict(doc)
                livemode = bool(fields.pop("livemode", False))
                if fields.get("status") == "succeeded" and "amount_received" not in fields:
                    fields["amount_received"] = fields.get("amount", 0)
                intent = state.new_intent(fields, livemode)
                return 200, json.loads(json.dumps(intent))
        match = _MOCK_INTENT_PATH.match(path)
        if match and method == "POST":
            with state.lock:
                intent = state.intents.get(match.group(1))
                if intent is None:
                    return _stripe_error(404, "invalid_request_error",
                                         f"No such payment_intent: '{match.group(1)}'",
                                         code="resource_missing", param="intent")
                if doc.get("status") == "succeeded" and "amount_received" not in doc:
                    intent["amount_received"] = intent["amount"]
                if doc.get("status") == "canceled":
                    intent["canceled_at"] = int(time.time())
                intent.update(doc)
                return 200, json.loads(json.dumps(intent))
        if path == "/_mock/events" and method == "POST":
            with state.lock:
                intent = state.intents.get(doc["intent_id"])
                if intent is None:
                    return 404, {"error": "no such intent"}
                event = {
                    "id": doc.get("id") or _random_id("evt_"),
                    "object": "event",
                    "api_version": API_VERSION,
                    "created": int(time.time()),
                    "data": {"object": json.loads(json.dumps(intent))},
                    "livemode": intent["livemode"],
                    "pending_webhooks": 1,
                    "request": {"id": None, "idempotency_key": None},
                    "type": doc["type"],
                }
                return 200, event
        if path == "/_mock/sign" and method == "POST":
            timestamp = int(doc.get("timestamp", time.time()))
            header = sign_payload(doc["payload"].encode(), doc["secret"], timestamp)
            return 200, {"header": header, "timestamp": timestamp}
        return 404, {"error": f"no control endpoint {method} {path}"}


class MockServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, api_key=None):
        super().__init__(address, Handler)
        self.state = MockState(api_key)

    def stop(self):
        self.state.stopping.set()  # wakes hanging handlers
        self.shutdown()
        self.server_close()


def start_in_thread(host="127.0.0.1", port=0, api_key=None) -> MockServer:
    """Starts a server in a background thread (for Python tests); call .stop() after."""
    server = MockServer((host, port), api_key)
    # A short poll interval keeps stop() quick.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return server


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--api-key", default=None,
                       help="accept only this secret key (default: any sk_/rk_ key)")
    sign = sub.add_parser("sign", help="print a Stripe-Signature header for stdin")
    sign.add_argument("--secret", required=True)
    sign.add_argument("--timestamp", type=int, default=None)
    args = parser.parse_args(argv)

    if args.command == "sign":
        payload = sys.stdin.buffer.read()
        timestamp = args.timestamp if args.timestamp is not None else int(time.time())
        print(sign_payload(payload, args.secret, timestamp))
        return 0

    server = MockServer((args.host, args.port), args.api_key)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.state.stopping.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
