#!/usr/bin/env python3
"""Seed many tiny objects into an S3 bucket as fast as one process can, for scripts/bench-scale.sh.

    s3-seed.py ENDPOINT REGION BUCKET KEY_FORMATS START COUNT [BUDGET_SECONDS]

Environment: S3_ACCESS_KEY, S3_SECRET_KEY. For i in START..START+COUNT-1 PUTs fmt % i for each
fmt of KEY_FORMATS (separated by '|'), path-style, SigV4, payload signed, each with BODY (env
S3_BODY). Keys go out in order, in
batches of 1000 on THREADS (env S3_THREADS, default 16) keep-alive connections; after each
batch the budget is checked, so the seeded keys are always a prefix of the requested range.
Prints "<indexes seeded> <seconds>" on stdout. Standard library only (no boto3 on this machine).
"""
import datetime
import hashlib
import hmac
import http.client
import os
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

endpoint, region, bucket, key_formats = sys.argv[1:5]
key_formats = key_formats.split("|")
start, count = int(sys.argv[5]), int(sys.argv[6])
budget = float(sys.argv[7]) if len(sys.argv) > 7 else float("inf")
access, secret = os.environ["S3_ACCESS_KEY"], os.environ["S3_SECRET_KEY"]
body = os.environ.get("S3_BODY", "").encode()
threads = int(os.environ.get("S3_THREADS", "16"))
BATCH = 1000

url = urllib.parse.urlsplit(endpoint)
host = url.netloc
body_hash = hashlib.sha256(body).hexdigest()


def hm(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


_signing_key = {}


def signing_key(day):
    # The derived key depends only on the day: compute it once per day, not per request.
    if day not in _signing_key:
        k = hm(("AWS4" + secret).encode(), day)
        _signing_key[day] = hm(hm(hm(k, region), "s3"), "aws4_request")
    return _signing_key[day]


def headers_for(path):
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    signed = "host;x-amz-content-sha256;x-amz-date"
    canonical = "\n".join(["PUT", path, "", f"host:{host}", f"x-amz-content-sha256:{body_hash}",
                           f"x-amz-date:{amz_date}", "", signed, body_hash])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    sig = hmac.new(signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "Host": host,
        "x-amz-date": amz_date,
        "x-amz-content-sha256": body_hash,
        "Content-Length": str(len(body)),
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={signed}, Signature={sig}",
    }


local = threading.local()


def put_all(i):
    for fmt in key_formats:
        put(fmt % i)


def put(key):
    conn = getattr(local, "conn", None)
    if conn is None:
        conn = local.conn = http.client.HTTPConnection(host, timeout=30)
    path = "/" + bucket + "/" + urllib.parse.quote(key, safe="/")
    for attempt in range(3):
        try:
            conn.request("PUT", path, body=body, headers=headers_for(path))
            resp = conn.getresponse()
            data = resp.read()
            if resp.status == 200:
                return
            raise RuntimeError(f"PUT {path}: HTTP {resp.status}: {data[:300]!r}")
        except (OSError, http.client.HTTPException):
            # A dropped keep-alive connection: reconnect and retry this key.
            conn.close()
            conn = local.conn = http.client.HTTPConnection(host, timeout=30)
            if attempt == 2:
                raise


t0 = time.monotonic()
done = 0
with ThreadPoolExecutor(max_workers=threads) as pool:
    while done < count and time.monotonic() - t0 < budget:
        n = min(BATCH, count - done)
        list(pool.map(put_all, range(start + done, start + done + n)))
        done += n
print(done, f"{time.monotonic() - t0:.1f}")
