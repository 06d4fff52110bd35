#!/usr/bin/env python3
"""Self-test of the local Stripe stand-in: real field names, Stripe's error shape,
idempotency, control endpoints, faults, counters and the webhook signature."""

import hashlib
import hmac
import json
import os
import subprocess
import sys
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stripe_mock  # noqa: E402

KEY = "sk_test_mockselftest123"


class MockTest(unittest.TestCase):
    def setUp(self):
        self.server = stripe_mock.start_in_thread()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def tearDown(self):
        self.server.stop()

    def call(self, method, path, form=None, doc=None, headers=None, key=KEY, timeout=5):
        data = None
        all_headers = dict(headers or {})
        if key:
            all_headers["Authorization"] = f"Bearer {key}"
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        if doc is not None:
            data = json.dumps(doc).encode()
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read()), dict(error.headers)

    def create(self, idem="key-1", amount="99"):
        return self.call("POST", "/v1/payment_intents",
                         form={"amount": amount, "currency": "usd",
                               "metadata[job_id]": "job-1",
                               "automatic_payment_methods[enabled]": "true"},
                         headers={"Idempotency-Key": idem})

    def test_create_has_real_fields(self):
        status, intent, _ = self.create()
        self.assertEqual(status, 200)
        self.assertEqual(intent["object"], "payment_intent")
        self.assertRegex(intent["id"], r"^pi_[A-Za-z0-9]+$")
        self.assertRegex(intent["client_secret"], "^" + intent["id"] + r"_secret_[A-Za-z0-9]+$")
        self.assertEqual(intent["amount"], 99)
        self.assertEqual(intent["amount_received"], 0)
        self.assertEqual(intent["status"], "requires_payment_method")
        self.assertEqual(intent["metadata"], {"job_id": "job-1"})
        self.assertTrue(intent["automatic_payment_methods"]["enabled"])
        self.assertFalse(intent["livemode"])

    def test_confirm_with_the_client_secret_succeeds_or_declines(self):
        _, intent, _ = self.create()
        path = "/v1/payment_intents/" + intent["id"] + "/confirm"
        # The publishable key with another intent's secret is refused and changes nothing.
        status, error, _ = self.call("POST", path, key=None, form={
            "key": "pk_test_x1", "client_secret": intent["id"] + "_secret_wrong",
            "payment_method": "pm_card_visa"})
        self.assertEqual(status, 400, error)
        self.assertEqual(error["error"]["param"], "client_secret")
        status, error, _ = self.call("POST", path, key=None, form={
            "key": "pk_test_x1", "client_secret": intent["client_secret"],
            "payment_method": "pm_card_chargeDeclined"})
        self.assertEqual(status, 402, error)
        self.assertEqual(error["error"]["type"], "card_error")
        self.assertEqual(error["error"]["code"], "card_declined")
        self.assertEqual(error["error"]["payment_intent"]["status"], "requires_payment_method")
        status, error, _ = self.call("POST", path, key=None, form={
            "key": "pk_test_x1", "client_secret": intent["client_secret"],
            "payment_method": "pm_card_unknown"})
        self.assertEqual(status, 400, error)
        status, paid, headers = self.call("POST", path, key=None, form={
            "key": "pk_test_x1", "client_secret": intent["client_secret"],
            "payment_method": "pm_card_visa"})
        self.assertEqual(status, 200, paid)
        self.assertEqual(paid["status"], "succeeded")
        self.assertEqual(paid["amount_received"], 99)
        self.assertEqual(headers.get("Access-Control-Allow-Origin"), "*")
        _, fetched, _ = self.call("GET", "/v1/payment_intents/" + intent["id"])
        self.assertEqual(fetched["status"], "succeeded")
        # Twice is Stripe's unexpected-state error; the secret key may confirm too.
        status, error, _ = self.call("POST", path, form={"payment_method": "pm_card_visa"})
        self.assertEqual(status, 400, error)
        self.assertEqual(error["error"]["code"], "payment_intent_unexpected_state")
        _, report, _ = self.call("GET", "/_mock/requests", key=None)
        self.assertNotIn(intent["client_secret"], json.dumps(report))

    def test_payment_method_types_are_a_list_and_exclude_automatic(self):
        form = [("amount", "99"), ("currency", "usd"), ("metadata[job_id]", "job-1"),
                ("payment_method_types[]", "card"), ("payment_method_types[]", "link")]
        status, intent, _ = self.call("POST", "/v1/payment_intents", form=form,
                                      headers={"Idempotency-Key": "pmt-1"})
        self.assertEqual(status, 200, intent)
        self.assertEqual(intent["payment_method_types"], ["card", "link"])
        self.assertIsNone(intent["automatic_payment_methods"])
        _, report, _ = self.call("GET", "/_mock/requests", key=None)
        self.assertEqual(report["log"][-1]["form"]["payment_method_types[]"], ["card", "link"])
        status, error, _ = self.call(
            "POST", "/v1/payment_intents",
            form=form + [("automatic_payment_methods[enabled]", "true")],
            headers={"Idempotency-Key": "pmt-2"})
        self.assertEqual(status, 400)
        self.assertEqual(error["error"]["param"], "payment_method_types")
        status, error, _ = self.call(
            "POST", "/v1/payment_intents",
            form=[("amount", "99"), ("currency", "usd"), ("payment_method_types[]", "carrd")],
            headers={"Idempotency-Key": "pmt-3"})
        self.assertEqual(status, 400)
        self.assertIn("carrd", error["error"]["message"])

    def test_idempotency_key_replays_and_rejects_other_params(self):
        _, first, _ = self.create("same")
        status, again, headers = self.create("same")
        self.assertEqual(status, 200)
        self.assertEqual(again["id"], first["id"])
        self.assertEqual(headers.get("Idempotent-Replayed"), "true")
        status, error, _ = self.create("same", amount="100")
        self.assertEqual(status, 400)
        self.assertEqual(error["error"]["type"], "idempotency_error")
        _, other, _ = self.create("different")
        self.assertNotEqual(other["id"], first["id"])

    def test_errors_have_stripe_shape(self):
        status, error, _ = self.call("GET", "/v1/payment_intents/pi_doesnotexist")
        self.assertEqual(status, 404)
        self.assertEqual(error["error"]["type"], "invalid_request_error")
        self.assertEqual(error["error"]["code"], "resource_missing")
        status, error, _ = self.call("GET", "/v1/payment_intents/pi_x", key=None)
        self.assertEqual(status, 401)
        self.assertNotIn("sk_", json.dumps(error))
        status, error, _ = self.call("POST", "/v1/payment_intents", form={"currency": "usd"})
        self.assertEqual(status, 400)
        self.assertEqual(error["error"]["code"], "parameter_missing")

    def test_mark_succeeded_and_arbitrary_fields(self):
        _, intent, _ = self.create()
        status, changed, _ = self.call("POST", f"/_mock/payment_intents/{intent['id']}",
                                       doc={"status": "succeeded"}, key=None)
        self.assertEqual(status, 200)
        _, fetched, _ = self.call("GET", f"/v1/payment_intents/{intent['id']}")
        self.assertEqual(fetched["status"], "succeeded")
        self.assertEqual(fetched["amount_received"], 99)
        _, odd, _ = self.call("POST", "/_mock/payment_intents", key=None,
                              doc={"amount": 99, "currency": "eur", "livemode": True,
                                   "status": "succeeded"})
        _, fetched, _ = self.call("GET", f"/v1/payment_intents/{odd['id']}")
        self.assertEqual((fetched["currency"], fetched["livemode"], fetched["amount_received"]),
                         ("eur", True, 99))

    def test_faults_apply_to_the_next_n_requests_then_stop(self):
        self.call("POST", "/_mock/faults", doc={"kind": "500", "count": 2}, key=None)
        self.call("POST", "/_mock/faults", doc={"kind": "429", "count": 1, "retry_after": 3},
                  key=None)
        path = "/v1/payment_intents/pi_missing"
        self.assertEqual(self.call("GET", path)[0], 500)
        self.assertEqual(self.call("GET", path)[0], 500)
        status, error, headers = self.call("GET", path)
        self.assertEqual((status, error["error"]["code"], headers.get("Retry-After")),
                         (429, "rate_limit", "3"))
        self.assertEqual(self.call("GET", path)[0], 404)
        self.call("POST", "/_mock/faults", doc={"kind": "hang", "seconds": 5}, key=None)
        with self.assertRaises(OSError):  # timeouts are OSErrors (socket.timeout, URLError)
            self.call("GET", path, timeout=0.3)

    def test_counts_requests_per_path(self):
        _, intent, _ = self.create()
        for _ in range(3):
            self.call("GET", f"/v1/payment_intents/{intent['id']}")
        _, report, _ = self.call("GET", "/_mock/requests", key=None)
        self.assertEqual(report["counts"][f"/v1/payment_intents/{intent['id']}"], 3)
        self.assertEqual(report["counts"]["/v1/payment_intents"], 1)
        self.assertEqual(report["total"], 4)
        self.assertEqual(report["log"][0]["idempotency_key"], "key-1")
        self.assertTrue(report["log"][0]["bearer"])

    def test_signature_matches_stripe_scheme(self):
        payload = b'{"id":"evt_1","type":"payment_intent.succeeded"}'
        header = stripe_mock.sign_payload(payload, "whsec_abc", 1700000000)
        expected = hmac.new(b"whsec_abc", b"1700000000." + payload, hashlib.sha256).hexdigest()
        self.assertEqual(header, f"t=1700000000,v1={expected}")
        cli = subprocess.run(
            [sys.executable, stripe_mock.__file__, "sign", "--secret", "whsec_abc",
             "--timestamp", "1700000000"], input=payload, capture_output=True, check=True)
        self.assertEqual(cli.stdout.decode().strip(), header)
        _, signed, _ = self.call("POST", "/_mock/sign", key=None,
                                 doc={"payload": payload.decode(), "secret": "whsec_abc",
                                      "timestamp": 1700000000})
        self.assertEqual(signed["header"], header)

    def test_event_document_carries_the_intent(self):
        _, intent, _ = self.create()
        _, event, _ = self.call("POST", "/_mock/events", key=None,
                                doc={"type": "payment_intent.succeeded",
                                     "intent_id": intent["id"], "id": "evt_fixed"})
        self.assertEqual(event["id"], "evt_fixed")
        self.assertEqual(event["object"], "event")
        self.assertEqual(event["data"]["object"]["id"], intent["id"])
        self.assertEqual(event["data"]["object"]["metadata"]["job_id"], "job-1")


if __name__ == "__main__":
    unittest.main()
