#!/usr/bin/python3
"""Cross-checks songd's SigV4 against botocore for random S3 requests.

For COUNT random object keys (unicode, spaces, '+', '%', '~', '//', reserved characters),
random methods, query sets, headers and credentials (with or without a session token), at a
fixed time, botocore computes an Authorization-header signature and a presigned GET URL.
songd_s3_sign_tool computes the same from the same inputs; every canonical request, string
to sign, signature, Authorization value and URL must match.

    botocore_crosscheck.py --tool build/tests/s3/songd_s3_sign_tool [--count 200] [--seed 1]

Exit status 0 when every case matches; the first mismatches are printed in full.
"""

import argparse
import datetime
import hashlib
import json
import random
import subprocess
import sys
import types

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode

FIXED_TIME = datetime.datetime(2026, 11, 26, 7, 30, 5)
FIXED_EPOCH = int((FIXED_TIME - datetime.datetime(1970, 1, 1)).total_seconds())


class _FixedDatetime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return cls(FIXED_TIME.year, FIXED_TIME.month, FIXED_TIME.day, FIXED_TIME.hour,
                   FIXED_TIME.minute, FIXED_TIME.second)


# botocore reads the clock in add_auth; pin it for reproducible signatures.
botocore.auth.datetime = types.SimpleNamespace(datetime=_FixedDatetime)

KEY_PIECES = [
    "song", "output_fixed.wav", "a b", "  two  spaces ", "plus+sign", "100%", "%41", "~tilde",
    "//", "/", "dot.", "..", ".", "caf\u00e9", "\u65e5\u672c\u8a9e", "\U0001f3b5", "\u00fc\u00df",
    "!", "*", "'", "(", ")", ";", ":", "@", "&", "=", "$", ",", "?", "#", "[", "]", "\"", "<",
    ">", "{", "}", "|", "\\", "^", "`", "-", "_", "0", "Z", "\t",
]
QUERY_NAMES = ["prefix", "list-type", "uploads", "uploadId", "partNumber", "max-keys",
               "continuation-token", "delete", "response-content-type", "x-id", "a b", "caf\u00e9",
               "+", "~", "%", "Z", "z"]
HEADER_CHOICES = [
    ("Content-Type", ["audio/wav", "application/xml", "text/plain;  charset=utf-8"]),
    ("x-amz-meta-job-id", ["3f2b6c1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "  padded  value  "]),
    ("Range", ["bytes=0-9", "bytes=100-"]),
    ("Content-MD5", ["1B2M2Y8AsgTpgAmY7PhCfg=="]),
    ("x-amz-storage-class", ["STANDARD", "REDUCED_REDUNDANCY"]),
    ("Cache-Control", ["no-cache", "max-age=60,  private"]),
]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "auto"]


def random_key(rng):
    parts = [rng.choice(KEY_PIECES) for _ in range(rng.randint(1, 6))]
    return "".join(parts)


def random_query(rng):
    query = []
    used = set()
    for _ in range(rng.randint(0, 4)):
        name = rng.choice(QUERY_NAMES)
        if name in used:  # presigning keeps one value per name, as S3 reads it
            continue
        used.add(name)
        value = rng.choice(["", "2", "a b", "x+y", "100%", "/slash/", "caf\u00e9", "~", "=&"])
        query.append([name, value])
    return query


def random_case(rng, index):
    bucket = rng.choice(["songs", "my-bucket", "b.with.dots"])
    style = rng.choice(["virtual", "path", "local"])
    region = rng.choice(REGIONS)
    key = random_key(rng)
    if style == "virtual" and "." not in bucket:
        scheme, host, path = "https", f"{bucket}.s3.{region}.amazonaws.com", "/" + key
    elif style == "local":
        scheme, host, path = "http", "127.0.0.1:9000", f"/{bucket}/{key}"
    else:
        scheme, host, path = "https", f"s3.{region}.amazonaws.com", f"/{bucket}/{key}"
    token = ""
    if rng.random() < 0.3:
        token = "FwoGZXIvYXdzE" + "".join(rng.choice("ABCxyz019+/=") for _ in range(40))
    return {
        "index": index,
        "scheme": scheme,
        "host": host,
        "path": path,
        "region": region,
        "access_key": "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
                                       for _ in range(16)),
        "secret_key": "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEF0123456789+/")
                              for _ in range(40)),
        "session_token": token,
        "method": rng.choice(["GET", "PUT", "HEAD", "DELETE", "POST"]),
        "query": random_query(rng),
        "headers": [[name, rng.choice(values)]
                    for name, values in rng.sample(HEADER_CHOICES, rng.randint(0, 3))],
        "body": "".join(rng.choice("abc \n\u00e9") for _ in range(rng.randint(0, 64))),
        "expires": rng.choice([1, 60, 3600, 86400, 604800]),
    }


class _RecordingHeaderAuth(botocore.auth.S3SigV4Auth):
    def canonical_request(self, request):
        self.last_canonical_request = super().canonical_request(request)
        return self.last_canonical_request

    def string_to_sign(self, request, canonical_request):
        self.last_string_to_sign = super().string_to_sign(request, canonical_request)
        return self.last_string_to_sign


class _RecordingQueryAuth(botocore.auth.S3SigV4QueryAuth):
    def canonical_request(self, request):
        self.last_canonical_request = super().canonical_request(request)
        return self.last_canonical_request

    def string_to_sign(self, request, canonical_request):
        self.last_string_to_sign = super().string_to_sign(request, canonical_request)
        return self.last_string_to_sign


def credentials(case):
    return Credentials(case["access_key"], case["secret_key"], case["session_token"] or None)


def botocore_header(case):
    # botocore's serializer puts an object key into the URL with percent_encode(safe='/~').
    url = f"{case['scheme']}://{case['host']}{percent_encode(case['path'], safe='/~')}"
    body = case["body"].encode("utf-8")
    request = AWSRequest(method=case["method"], url=url, data=body,
                         headers=dict(case["headers"]),
                         params=[tuple(p) for p in case["query"]])
    auth = _RecordingHeaderAuth(credentials(case), "s3", case["region"])
    auth.add_auth(request)
    authorization = request.headers["Authorization"]
    return {
        "canonical_request": auth.last_canonical_request,
        "string_to_sign": auth.last_string_to_sign,
        "signature": authorization.rsplit("Signature=", 1)[1],
        "authorization": authorization,
    }


def botocore_presign(case):
    url = f"{case['scheme']}://{case['host']}{percent_encode(case['path'], safe='/~')}"
    request = AWSRequest(method="GET", url=url, params=dict(case["query"]))
    auth = _RecordingQueryAuth(credentials(case), "s3", case["region"], expires=case["expires"])
    auth.add_auth(request)
    return {
        "canonical_request": auth.last_canonical_request,
        "string_to_sign": auth.last_string_to_sign,
        "signature": request.url.rsplit("X-Amz-Signature=", 1)[1],
        "url": request.url,
    }


def tool_inputs(case):
    common = {
        "scheme": case["scheme"], "host": case["host"], "path": case["path"],
        "access_key": case["access_key"], "secret_key": case["secret_key"],
        "session_token": case["session_token"], "region": case["region"],
        "time": FIXED_EPOCH, "expires": case["expires"],
    }
    body_hash = hashlib.sha256(case["body"].encode("utf-8")).hexdigest()
    header = dict(common, id=f"h{case['index']}", mode="header", method=case["method"],
                  query=case["query"], headers=case["headers"], payload_hash=body_hash)
    query = dict(common, id=f"q{case['index']}", mode="query", method="GET",
                 query=case["query"], headers=[], payload_hash="UNSIGNED-PAYLOAD")
    return [header, query]


def split_url(url):
    base, _, query = url.partition("?")
    return base, sorted(query.split("&"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tool", required=True)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    cases = [random_case(rng, i) for i in range(args.count)]
    expected = {}
    inputs = []
    for case in cases:
        header_in, query_in = tool_inputs(case)
        expected[header_in["id"]] = botocore_header(case)
        expected[query_in["id"]] = botocore_presign(case)
        inputs += [header_in, query_in]

    run = subprocess.run([args.tool], input=json.dumps(inputs).encode("utf-8"),
                         capture_output=True, check=False)
    if run.returncode != 0:
        print(f"songd_s3_sign_tool failed: {run.stderr.decode(errors='replace')}")
        return 1
    actual = {r["id"]: r for r in json.loads(run.stdout)}

    mismatches = []
    for case_id, want in expected.items():
        got = actual.get(case_id)
        if got is None:
            mismatches.append((case_id, "missing from songd's output", "", ""))
            continue
        for field in ("canonical_request", "string_to_sign", "signature", "authorization"):
            if field in want and want[field] != got.get(field):
                mismatches.append((case_id, field, want[field], got.get(field)))
        if "url" in want:
            # botocore puts operation parameters before the auth parameters; the order on
            # the wire does not matter, every encoded pair and the URL base must match.
            if split_url(want["url"]) != split_url(got["url"]):
                mismatches.append((case_id, "url", want["url"], got["url"]))

    signatures = len(expected)
    if mismatches:
        for case_id, field, want, got in mismatches[:5]:
            print(f"MISMATCH {case_id} {field}\n  botocore: {want!r}\n  songd:    {got!r}")
        print(f"{len(mismatches)} mismatches over {signatures} signatures "
              f"({args.count} keys)")
        return 1
    keys_with = {
        "space": sum(" " in c["path"] for c in cases),
        "plus": sum("+" in c["path"] for c in cases),
        "percent": sum("%" in c["path"] for c in cases),
        "tilde": sum("~" in c["path"] for c in cases),
        "double_slash": sum("//" in c["path"] for c in cases),
        "non_ascii": sum(any(ord(ch) > 127 for ch in c["path"]) for c in cases),
        "session_token": sum(bool(c["session_token"]) for c in cases),
    }
    print(f"OK: {signatures} signatures ({args.count} header-signed requests, {args.count} "
          f"presigned URLs) match botocore {botocore.__version__}; keys with {keys_with}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
