#!/usr/bin/env python3
"""Small manifest PUTs in a loop on one keep-alive TLS connection, each timed, until a stop
file appears; for scripts/bench-gc.sh.

    gc-bench-client.py HOST PORT CA TOKEN REPOSITORY CONFIG_DIGEST CONFIG_SIZE OUT STOP_FILE

Each PUT is a new OCI manifest (an annotation makes it unique) naming the config blob, under
a new tag, as a CI pipeline pushing small images would. OUT gets one line per request:
"<start, unix ms> <latency ms> <HTTP status>". Standard library only.
"""
import http.client
import json
import os
import ssl
import sys
import time

host, port, ca, token, repo, config_digest, config_size, out_path, stop_file = sys.argv[1:10]
ctx = ssl.create_default_context(cafile=ca)
conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=120)
headers = {
    "Authorization": f"Bearer {token}",
    "Content-Type": "application/vnd.oci.image.manifest.v1+json",
}
n = 0
with open(out_path, "w") as out:
    while not os.path.exists(stop_file):
        n += 1
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": int(config_size),
                },
                "layers": [],
                "annotations": {"bench.n": str(n), "bench.pid": str(os.getpid())},
            }
        ).encode()
        start = time.time()
        conn.request("PUT", f"/v2/{repo}/manifests/p{os.getpid()}-{n}", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        latency = (time.time() - start) * 1000
        out.write(f"{int(start * 1000)} {latency:.3f} {resp.status}\n")
