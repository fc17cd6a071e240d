#!/usr/bin/python3
"""Soak-test driver for scripts/soak.sh: one Wharf server, a mixed load for a set time,
samples every minute, a verdict at the end. Standard library only.

    soak-driver.py --bin WHARF --out DIR --minutes N [--kill-every M] [--sample-seconds S]
                   [--backend embedded|postgres-s3]

It starts `wharf serve` itself (so kill mode can `kill -9` and restart it), then runs one
thread per activity, each with a small fixed pool of contents re-pushed to rotating tags,
so steady-state data is bounded and growth means a leak:

  api_push      blobs + manifest PUT over the registry API (pool of 50 manifests, 10 tags)
  api_pull      manifest GET by tag + blob GET
  docker_push   `docker push` of 3 pool images to 6 rotating tags
  docker_pull   `docker pull` of a pushed tag
  skopeo_push   `skopeo copy docker-daemon:… docker://…` (pool images, 4 tags)
  skopeo_pull   `skopeo copy docker://… dir:…`
  signed_push   DOCKER_CONTENT_TRUST=1 docker push (4 tags)
  trust_read    GET timestamp.json / targets.json of the signed repository
  token_good    GET /token with a good password (must be 200)
  token_bad     GET /token with a wrong password from 127.0.0.2 (must be 401, or 429
                TOOMANYREQUESTS once throttled): a source address of its own, so the address
                lockout it earns never reaches the good users on 127.0.0.1
  portal        sign in (CSRF form), repositories page, a repository page, sign out
  admin_api     owner GETs (users, usage, audit, gc) and a user created then deleted
  aborted       upload started, one chunk, then DELETEd (204) or abandoned
  slow_upload   256 KiB blob trickled in 4 KiB pieces over ~30 s, then committed (201)
  slow_download the same blob read 8 KiB every 0.2 s

Every outcome is checked against what it must be; anything else is a failure named in
failures.log. In kill mode a request that fails because the server was killed under it
(the kill happened while it ran, or it started while the server was down) is counted as
"interrupted", not as a failure. Every acknowledged manifest PUT (repository, digest) is
recorded; after each restart and at the end each must still pull by digest with the right
bytes, and each api_push tag must still name the last digest acknowledged for it.

Verdict rule (also in README "Soak test"): with the samples split in thirds, the median of
the last third of RSS, open fds and threads must be at most 1.10 x the median of the middle
third plus a floor (RSS 8 MiB, fds 16, threads 4); api_pull p50 likewise at most 2 x + 20 ms.
In kill mode RSS/fds/threads restart with the process every M minutes, so they are reported,
not judged. Upload scratch files in a sample must not outnumber the uploads abandoned in the
last 4 minutes (idle timeout 60 s + housekeeping every 60 s, with margin) plus 5 open
sessions: the count follows the abandon rate, which moves with the machine's speed, so a
ratio between thirds would flag a busier minute, not a leak. DB size (+ WAL) is reported as
growth per hour (the audit log and trust metadata history grow by design). Also fail: any
unexpected request outcome, any acknowledged push lost, scratch files left after the idle
timeout, an integrity check that is not `ok`.
"""
import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import signal
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

PW = "soak-Passw0rd-1"
ADMIN_PW = "soak-Admin-pw-1"
UPLOAD_IDLE = 60
DCT_ENV = {
    "DOCKER_CONTENT_TRUST": "1",
    "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": "soak-root-pass",
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "soak-repo-pass",
}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACTIVITIES = [
    "api_push", "api_pull", "docker_push", "docker_pull", "skopeo_push", "skopeo_pull",
    "signed_push", "trust_read", "token_good", "token_bad", "portal", "admin_api",
    "aborted", "slow_upload", "slow_download",
]


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


class Interrupted(Exception):
    """The server was killed under this operation (kill mode)."""


def s3_upload_sessions(env):
    """Count the `uploads/<id>/` prefixes in Wharf's bucket with a signed ListObjectsV2
    (delimiter `/`), paging on the continuation token. Plain SigV4 from the standard library,
    so the soak needs no AWS SDK; it only runs against the store this script configured."""
    endpoint = urllib.parse.urlsplit(env["WHARF_STORAGE_S3_ENDPOINT"])
    region = env.get("WHARF_STORAGE_S3_REGION", "us-east-1")
    bucket = env["WHARF_STORAGE_S3_BUCKET"]
    key_id, secret = env["WHARF_STORAGE_S3_ACCESS_KEY_ID"], env["WHARF_STORAGE_S3_SECRET_ACCESS_KEY"]
    prefix = env.get("WHARF_STORAGE_S3_PREFIX", "") + "uploads/"
    q = lambda v: urllib.parse.quote(v, safe="-_.~")  # noqa: E731
    hmac256 = lambda k, m: hmac.new(k, m.encode(), hashlib.sha256).digest()  # noqa: E731
    sessions, token = 0, None
    while True:
        params = {"list-type": "2", "delimiter": "/", "prefix": prefix}
        if token:
            params["continuation-token"] = token
        query = "&".join(f"{q(k)}={q(v)}" for k, v in sorted(params.items()))
        now = datetime.datetime.now(datetime.timezone.utc)
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        empty = hashlib.sha256(b"").hexdigest()
        headers = {"host": endpoint.netloc, "x-amz-content-sha256": empty, "x-amz-date": amz_date}
        signed = ";".join(sorted(headers))
        canonical = "\n".join(["GET", f"/{bucket}", query, *(f"{k}:{headers[k]}" for k in sorted(headers)), "",
                               signed, empty])
        scope = f"{day}/{region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        k = hmac256(hmac256(hmac256(hmac256(("AWS4" + secret).encode(), day), region), "s3"), "aws4_request")
        headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={signed}, "
                                    f"Signature={hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()}")
        cls = http.client.HTTPSConnection if endpoint.scheme == "https" else http.client.HTTPConnection
        conn = cls(endpoint.hostname, endpoint.port, timeout=30)
        conn.request("GET", f"/{bucket}?{query}", headers=headers)
        r = conn.getresponse()
        body = r.read().decode()
        conn.close()
        if r.status != 200:
            raise RuntimeError(f"S3 listing of {prefix} answered {r.status}: {body[:300]}")
        sessions += len(re.findall(r"<CommonPrefixes>", body))
        m = re.search(r"<NextContinuationToken>([^<]+)</NextContinuationToken>", body)
        if "<IsTruncated>true</IsTruncated>" not in body or not m:
            return sessions
        token = m.group(1)


class Unexpected(Exception):
    pass


class Soak:
    def __init__(self, a):
        self.a = a
        self.out = os.path.abspath(a.out)
        os.makedirs(self.out, exist_ok=True)
        self.work = tempfile.mkdtemp(prefix="wharf-soak.")
        self.data = os.path.join(self.work, "data")
        self.port = free_port()
        self.host = f"localhost:{self.port}"
        self.ca = os.path.join(self.data, "tls/ca.crt")
        self.proc = None
        self.up = threading.Event()
        self.epoch = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.lat = {k: [] for k in ACTIVITIES}  # this minute's latencies (s)
        self.counts = {"ops": 0, "failures": 0, "interrupted": 0}
        self.abandoned = 0  # uploads abandoned since the last sample
        self.failures = []
        self.acked = {}  # (repo, digest) -> time acknowledged
        self.api_tags = {}  # tag -> last acknowledged digest
        self.api_inflight = set()  # tags of the api_push PUTs under way
        self.kills = 0
        self.checks = []  # lines for the summary
        self.fail_log = open(os.path.join(self.out, "failures.log"), "w")
        self.backend_env = {}
        if a.backend == "postgres-s3":
            missing = [k for k in ("WHARF_DATABASE_URL",) if not os.environ.get(k)]
            if missing:
                sys.exit("--backend postgres-s3 needs WHARF_DATABASE_URL and the WHARF_STORAGE_* S3 settings")
            self.backend_env = {k: v for k, v in os.environ.items() if k.startswith(("WHARF_DATABASE", "WHARF_STORAGE", "AWS_"))}
            self.backend_env.setdefault("WHARF_STORAGE_BACKEND", "s3")

    # ------------------------------------------------------------------ server
    def start_server(self):
        env = dict(os.environ)
        env.update({
            "WHARF_LISTEN": f"127.0.0.1:{self.port}",
            "WHARF_DATA_DIR": self.data,
            "WHARF_ADMIN_PASSWORD": ADMIN_PW,
            "WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP": "true",
            "WHARF_LIMITS_UPLOAD_IDLE_TIMEOUT_SECONDS": str(UPLOAD_IDLE),
            "WHARF_LOG": os.environ.get("WHARF_LOG", "warn"),
        })
        env.update(self.backend_env)
        outp = os.path.join(self.work, "wharf.out")
        open(outp, "w").close()
        self.proc = subprocess.Popen([self.a.bin, "serve"], env=env, stdout=open(outp, "a"),
                                     stderr=open(os.path.join(self.out, "wharf.err"), "a"),
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline:
            if "Wharf is listening on" in open(outp).read():
                return
            if self.proc.poll() is not None:
                sys.exit(f"wharf exited at start-up (see {self.out}/wharf.err)")
            time.sleep(0.1)
        sys.exit("wharf did not start within 120 s")

    def stop_server(self, sig):
        self.proc.send_signal(sig)
        self.proc.wait()

    # ------------------------------------------------------------------ HTTP
    def ssl_ctx(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        return ctx

    def conn(self, source=None, timeout=120):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self._ctx, timeout=timeout,
                                           source_address=(source, 0) if source else None)

    def raw(self, method, path, headers=None, body=None, source=None, read=True, conn=None):
        c = conn or self.conn(source)
        h = {"Host": self.host}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read() if read else None
        if conn is None and read:
            c.close()
        return r, data

    def token(self, user, pw, scopes, source=None):
        q = urllib.parse.urlencode([("service", "wharf")] + [("scope", s) for s in scopes])
        auth = "Basic " + __import__("base64").b64encode(f"{user}:{pw}".encode()).decode()
        return self.raw("GET", f"/token?{q}", {"Authorization": auth}, source=source)

    def bearer(self, user, pw, scopes):
        r, body = self.token(user, pw, scopes)
        if r.status != 200:
            raise Unexpected(f"token for {user} {scopes}: {r.status} {body[:200]!r}")
        return {"Authorization": "Bearer " + json.loads(body)["token"]}

    def expect(self, what, r, body, codes):
        if r.status not in codes:
            raise Unexpected(f"{what}: {r.status} (expected {sorted(codes)}) {body[:300]!r}")

    # ------------------------------------------------------------------ bookkeeping
    def run_op(self, activity, fn):
        self.up.wait()
        if self.stop.is_set():
            return
        e0 = self.epoch
        t0 = time.monotonic()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every failure is classified below
            killed = self.epoch != e0 or not self.up.is_set()
            with self.lock:
                if killed:
                    self.counts["interrupted"] += 1
                else:
                    self.counts["failures"] += 1
                    msg = f"{time.strftime('%H:%M:%S')} {activity}: {type(e).__name__}: {e}"
                    self.failures.append(msg)
                    print(msg, file=self.fail_log, flush=True)
            return
        dt = time.monotonic() - t0
        with self.lock:
            self.counts["ops"] += 1
            self.lat[activity].append(dt)

    def ack(self, repo, digest):
        with self.lock:
            self.acked.setdefault((repo, digest), time.time())

    def loop(self, activity, fn, pause):
        while not self.stop.is_set():
            self.run_op(activity, fn)
            self.stop.wait(pause * random.uniform(0.7, 1.3))

    # ------------------------------------------------------------------ set-up
    def setup(self):
        self._ctx = self.ssl_ctx()
        admin = self.bearer("admin", ADMIN_PW, ["registry:admin:*"])
        hj = dict(admin, **{"Content-Type": "application/json"})
        for name in ("soak-pusher", "soak-viewer", "soak-bad"):
            r, b = self.raw("POST", "/api/v1/users", hj, json.dumps({"name": name, "password": PW}))
            self.expect(f"create user {name}", r, b, {201})
        for role, who in (("AcrPush", "soak-pusher"), ("AcrDelete", "soak-pusher"), ("AcrImageSigner", "soak-pusher"),
                          ("AcrPull", "soak-viewer")):
            r, b = self.raw("POST", "/api/v1/role-assignments", hj, json.dumps({"role": role, "assignee": who}))
            self.expect(f"assign {role} to {who}", r, b, {201})
        # docker: one config directory per client kind (the signer keeps its trust keys there).
        self.docker_cfg = os.path.join(self.work, "docker")
        self.signer_cfg = os.path.join(self.work, "docker-signer")
        for cfg in (self.docker_cfg, self.signer_cfg):
            p = subprocess.run([self.a.bin, "login", self.host, "-u", "soak-pusher", "--password-stdin",
                                "--ca-file", self.ca], input=PW + "\n", text=True, capture_output=True,
                               env=dict(os.environ, DOCKER_CONFIG=cfg))
            if p.returncode != 0:
                sys.exit(f"wharf login failed: {p.stdout}{p.stderr}")
        self.cert_dir = os.path.join(self.work, "certs")
        os.makedirs(self.cert_dir)
        with open(self.ca, "rb") as f, open(os.path.join(self.cert_dir, "ca.crt"), "wb") as g:
            g.write(f.read())
        # Pool images (3): one-file root filesystems with 64 KiB of fixed pseudo-random bytes.
        self.pool_images = []
        for i in range(3):
            root = os.path.join(self.work, f"img{i}")
            os.makedirs(os.path.join(root, "etc"))
            rnd = random.Random(i)
            with open(os.path.join(root, "etc/soak"), "wb") as f:
                f.write(bytes(rnd.getrandbits(8) for _ in range(65536)))
            tar = os.path.join(self.work, f"img{i}.tar")
            subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True)
            ref = f"wharf-soak-pool-{self.port}:{i}"
            subprocess.run(["docker", "import", tar, ref], check=True, capture_output=True)
            self.pool_images.append(ref)
        # Pool blobs for the API pusher and the slow clients.
        self.small_blobs = [f"soak layer {i}".encode() * 64 for i in range(5)]
        self.big_blob = bytes(random.Random(99).getrandbits(8) for _ in range(256 * 1024))
        self.big_digest = sha(self.big_blob)
        h = self.bearer("soak-pusher", PW, ["repository:soak/slow:pull,push"])
        r, b = self.raw("POST", f"/v2/soak/slow/blobs/uploads/?digest={self.big_digest}", h, self.big_blob)
        self.expect("seed the slow-download blob", r, b, {201})

    # ------------------------------------------------------------------ activities
    def tok(self, scope, user="soak-pusher"):
        # A fresh token per operation, as a registry client gets one per session.
        return self.bearer(user, PW, [scope])

    def api_push(self):
        n = random.randrange(50)
        tag = f"t{random.randrange(10)}"
        h = self.tok("repository:soak/api:pull,push")
        config = json.dumps({"soak": n % 7}).encode()
        layer = self.small_blobs[n % len(self.small_blobs)]
        for blob in (config, layer):
            r, b = self.raw("POST", f"/v2/soak/api/blobs/uploads/?digest={sha(blob)}", h, blob)
            self.expect("blob upload", r, b, {201})
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer), "size": len(layer)}],
            "annotations": {"soak.n": str(n)},
        }).encode()
        with self.lock:
            self.api_inflight.add(tag)
        try:
            r, b = self.raw("PUT", f"/v2/soak/api/manifests/{tag}", dict(h, **{"Content-Type": OCI_MANIFEST}), manifest)
            self.expect("manifest PUT", r, b, {201})
            if r.getheader("Docker-Content-Digest") != sha(manifest):
                raise Unexpected(f"manifest PUT answered digest {r.getheader('Docker-Content-Digest')}")
            with self.lock:
                self.api_tags[tag] = sha(manifest)
        finally:
            with self.lock:
                self.api_inflight.discard(tag)
        self.ack("soak/api", sha(manifest))

    def api_pull(self):
        with self.lock:
            tags = list(self.api_tags)
        if not tags:
            return
        h = self.tok("repository:soak/api:pull")
        r, b = self.raw("GET", f"/v2/soak/api/manifests/{random.choice(tags)}", dict(h, Accept=OCI_MANIFEST))
        self.expect("manifest GET", r, b, {200})
        layer = json.loads(b)["layers"][0]["digest"]
        r, b = self.raw("GET", f"/v2/soak/api/blobs/{layer}", h)
        self.expect("blob GET", r, b, {200})
        if sha(b) != layer:
            raise Unexpected(f"blob {layer} came back with digest {sha(b)}")

    def docker(self, args, cfg=None, env=None, timeout=300):
        e = dict(os.environ, DOCKER_CONFIG=cfg or self.docker_cfg)
        e.update(env or {})
        p = subprocess.run(["docker"] + args, env=e, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise Unexpected(f"docker {' '.join(args)}: {(p.stdout + p.stderr).strip()[-400:]}")
        return p.stdout + p.stderr

    def pushed(self, repo, text):
        m = re.search(r"digest: (sha256:[0-9a-f]{64})", text)
        if not m:
            raise Unexpected(f"no digest in push output: {text[-300:]}")
        self.ack(repo, m.group(1))

    def docker_push(self):
        ref = f"{self.host}/soak/docker:t{random.randrange(6)}"
        self.docker(["tag", random.choice(self.pool_images), ref])
        self.pushed("soak/docker", self.docker(["push", ref]))
        self.docker_tags.add(ref)

    def docker_pull(self):
        if not self.docker_tags:
            return
        self.docker(["pull", "-q", random.choice(sorted(self.docker_tags))])

    def skopeo(self, args):
        p = subprocess.run(["skopeo"] + args, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise Unexpected(f"skopeo {' '.join(args[:1])}: {(p.stdout + p.stderr).strip()[-400:]}")

    def skopeo_push(self):
        tag = f"t{random.randrange(4)}"
        with tempfile.NamedTemporaryFile(dir=self.work) as df:
            self.skopeo(["copy", "--quiet", "--dest-creds", f"soak-pusher:{PW}", "--dest-cert-dir", self.cert_dir,
                         "--digestfile", df.name, f"docker-daemon:{random.choice(self.pool_images)}",
                         f"docker://{self.host}/soak/skopeo:{tag}"])
            self.ack("soak/skopeo", open(df.name).read().strip())
        self.skopeo_tags.add(tag)

    def skopeo_pull(self):
        if not self.skopeo_tags:
            return
        with tempfile.TemporaryDirectory(dir=self.work) as d:
            self.skopeo(["copy", "--quiet", "--src-creds", f"soak-viewer:{PW}", "--src-cert-dir", self.cert_dir,
                         f"docker://{self.host}/soak/skopeo:{random.choice(sorted(self.skopeo_tags))}", f"dir:{d}"])

    def signed_push(self):
        ref = f"{self.host}/soak/signed:t{random.randrange(4)}"
        self.docker(["tag", random.choice(self.pool_images), ref], cfg=self.signer_cfg)
        out = self.docker(["push", ref], cfg=self.signer_cfg, env=DCT_ENV)
        if "Successfully signed" not in out:
            raise Unexpected(f"signed push did not sign: {out[-300:]}")
        self.pushed("soak/signed", out)
        self.signed_once = True

    def trust_read(self):
        gun = f"{self.host}/soak/signed"
        h = self.tok(f"repository:{gun}:pull", "soak-viewer")
        for role in ("timestamp", "targets"):
            r, b = self.raw("GET", f"/v2/{gun}/_trust/tuf/{role}.json", h)
            self.expect(f"trust {role}.json", r, b, {200} if self.signed_once else {200, 404})
            if r.status == 200:
                json.loads(b)

    def token_good(self):
        r, b = self.token("soak-viewer", PW, ["repository:soak/api:pull"])
        self.expect("token, good password", r, b, {200})

    def token_bad(self):
        r, b = self.token("soak-bad", "wrong-password", ["repository:soak/api:pull"], source="127.0.0.2")
        self.expect("token, wrong password", r, b, {401, 429})
        code = json.loads(b)["errors"][0]["code"]
        if code != {401: "UNAUTHORIZED", 429: "TOOMANYREQUESTS"}[r.status]:
            raise Unexpected(f"token, wrong password: {r.status} with code {code}")

    def portal(self):
        c = self.conn()
        try:
            r, b = self.raw("GET", "/portal/sign-in", conn=c)
            self.expect("sign-in page", r, b, {200})
            signin = re.search(r"__Host-wharf_signin=([^;]+)", r.getheader("Set-Cookie") or "").group(1)
            csrf = re.search(rb'name="csrf" value="([^"]+)"', b).group(1).decode()
            form = urllib.parse.urlencode({"name": "soak-viewer", "password": PW, "csrf": csrf})
            r, b = self.raw("POST", "/portal/sign-in", {"Cookie": f"__Host-wharf_signin={signin}",
                                                        "Content-Type": "application/x-www-form-urlencoded"}, form, conn=c)
            self.expect("sign in", r, b, {303})
            session = re.search(r"__Host-wharf_session=([^;]+)", r.getheader("Set-Cookie") or "").group(1)
            ck = {"Cookie": f"__Host-wharf_session={session}"}
            r, b = self.raw("GET", "/portal/repositories", ck, conn=c)
            self.expect("repositories page", r, b, {200})
            r, b = self.raw("GET", "/portal/repositories/soak/api", ck, conn=c)
            self.expect("repository page", r, b, {200} if self.api_tags else {200, 404})
            csrf = re.search(rb'name="csrf" value="([^"]+)"', b).group(1).decode()
            r, b = self.raw("POST", "/portal/sign-out", dict(ck, **{"Content-Type": "application/x-www-form-urlencoded"}),
                            urllib.parse.urlencode({"csrf": csrf}), conn=c)
            self.expect("sign out", r, b, {303})
        finally:
            c.close()

    def admin_api(self):
        h = self.bearer("admin", ADMIN_PW, ["registry:admin:*"])
        for path in ("/api/v1/users", "/api/v1/usage", "/api/v1/audit?limit=50", "/api/v1/gc", "/api/v1/role-assignments"):
            r, b = self.raw("GET", path, h)
            self.expect(f"GET {path}", r, b, {200})
        r, b = self.raw("GET", "/metrics", h)
        self.expect("GET /metrics", r, b, {200})
        name = f"soak-tmp-{random.randrange(1 << 30)}"
        r, b = self.raw("POST", "/api/v1/users", dict(h, **{"Content-Type": "application/json"}),
                        json.dumps({"name": name, "password": PW}))
        self.expect("create a user", r, b, {201})
        r, b = self.raw("DELETE", f"/api/v1/users/{name}", h)
        self.expect("delete the user", r, b, {200, 204})

    def aborted(self):
        h = self.tok("repository:soak/aborted:pull,push")
        r, b = self.raw("POST", "/v2/soak/aborted/blobs/uploads/", h)
        self.expect("start upload", r, b, {202})
        loc = r.getheader("Location")
        loc = urllib.parse.urlsplit(loc)._replace(scheme="", netloc="").geturl()
        r, b = self.raw("PATCH", loc, dict(h, **{"Content-Type": "application/octet-stream"}), self.small_blobs[0])
        self.expect("upload a chunk", r, b, {202})
        if random.random() < 0.5:
            loc = urllib.parse.urlsplit(r.getheader("Location") or loc)._replace(scheme="", netloc="").geturl()
            r, b = self.raw("DELETE", loc, h)
            self.expect("cancel the upload", r, b, {204})
        else:
            with self.lock:
                self.abandoned += 1

    def slow_upload(self):
        h = self.tok("repository:soak/slow:pull,push")
        r, b = self.raw("POST", "/v2/soak/slow/blobs/uploads/", h)
        self.expect("start slow upload", r, b, {202})
        loc = urllib.parse.urlsplit(r.getheader("Location"))._replace(scheme="", netloc="").geturl()

        def trickle():
            for i in range(0, len(self.big_blob), 4096):
                yield self.big_blob[i:i + 4096]
                time.sleep(0.45)
        c = self.conn()
        try:
            c.request("PATCH", loc, body=trickle(), encode_chunked=True,
                      headers=dict(h, Host=self.host, **{"Content-Type": "application/octet-stream"}))
            r = c.getresponse()
            b = r.read()
        finally:
            c.close()
        self.expect("trickled PATCH", r, b, {202})
        loc = urllib.parse.urlsplit(r.getheader("Location") or loc)._replace(scheme="", netloc="").geturl()
        sep = "&" if "?" in loc else "?"
        r, b = self.raw("PUT", f"{loc}{sep}digest={self.big_digest}", h)
        self.expect("commit slow upload", r, b, {201})

    def slow_download(self):
        h = self.tok("repository:soak/slow:pull")
        c = self.conn()
        try:
            r, _ = self.raw("GET", f"/v2/soak/slow/blobs/{self.big_digest}", h, read=False, conn=c)
            if r.status != 200:
                raise Unexpected(f"slow download: {r.status} {r.read()[:200]!r}")
            got = hashlib.sha256()
            while True:
                piece = r.read(8192)
                if not piece:
                    break
                got.update(piece)
                time.sleep(0.2)
            if "sha256:" + got.hexdigest() != self.big_digest:
                raise Unexpected("slow download: wrong bytes")
        finally:
            c.close()

    # ------------------------------------------------------------------ checks
    def verify_acked(self, when, inflight=frozenset()):
        """Every acknowledged manifest still pulls by digest with its bytes; every api_push
        tag not being written at the kill still names its last acknowledged digest."""
        with self.lock:
            acked = list(self.acked)
            tags = dict(self.api_tags)
        lost = []
        tokens = {}
        for repo, digest in acked:
            if repo not in tokens:
                tokens[repo] = self.bearer("soak-viewer", PW, [f"repository:{repo}:pull"])
            r, b = self.raw("GET", f"/v2/{repo}/manifests/{digest}",
                            dict(tokens[repo], Accept=OCI_MANIFEST + ",application/vnd.docker.distribution.manifest.v2+json"))
            if r.status != 200 or sha(b) != digest:
                lost.append(f"{repo}@{digest}: {r.status}")
        h = self.bearer("soak-viewer", PW, ["repository:soak/api:pull"])
        for tag, digest in tags.items():
            if tag in inflight:
                continue
            r, b = self.raw("HEAD", f"/v2/soak/api/manifests/{tag}", dict(h, Accept=OCI_MANIFEST), read=True)
            if r.getheader("Docker-Content-Digest") != digest:
                # Another PUT of this tag may have been acknowledged in between (workers run on).
                with self.lock:
                    now_digest = self.api_tags.get(tag)
                if r.getheader("Docker-Content-Digest") != now_digest:
                    lost.append(f"soak/api:{tag} names {r.getheader('Docker-Content-Digest')}, last acknowledged {digest}")
        line = f"{when}: {len(acked)} acknowledged manifests, {len(tags)} api tags checked, {len(lost)} lost"
        log(line)
        self.checks.append(line)
        for l in lost:
            self.fail_now(f"LOST {when}: {l}")
        return not lost

    def fail_now(self, msg):
        with self.lock:
            self.counts["failures"] += 1
            self.failures.append(msg)
            print(msg, file=self.fail_log, flush=True)
        log(msg)

    def integrity(self, when):
        if self.a.backend == "postgres-s3":
            sql = ("CREATE EXTENSION IF NOT EXISTS amcheck; "
                   "SELECT count(*) FROM (SELECT bt_index_check(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                   "JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "WHERE a.amname = 'btree' AND n.nspname NOT IN ('pg_catalog','information_schema')) x;")
            p = subprocess.run(["psql", "-X", "-q", "-t", "-v", "ON_ERROR_STOP=1", os.environ["WHARF_DATABASE_URL"], "-c", sql],
                               capture_output=True, text=True)
            ok = p.returncode == 0
            res = f"amcheck of {p.stdout.strip() or '?'} indexes " + ("clean" if ok else f"FAILED: {p.stderr.strip()[-300:]}")
        else:
            db = sqlite3.connect(os.path.join(self.data, "metadata.db"))
            res = ";".join(r[0] for r in db.execute("PRAGMA integrity_check"))
            db.close()
            ok = res == "ok"
            res = f"PRAGMA integrity_check = {res}"
        line = f"{when}: {res}"
        log(line)
        self.checks.append(line)
        if not ok:
            self.fail_now(f"INTEGRITY {line}")

    def scratch_files(self):
        """Upload sessions holding scratch data: files under storage/uploads on disk, or on S3
        the `uploads/<id>/` prefixes in the bucket (each session keeps its parts there)."""
        if self.a.backend == "postgres-s3":
            return s3_upload_sessions(self.backend_env)
        d = os.path.join(self.data, "storage/uploads")
        try:
            return len(os.listdir(d))
        except FileNotFoundError:
            return 0

    # ------------------------------------------------------------------ sampling
    def proc_stat(self):
        pid = self.proc.pid
        try:
            st = open(f"/proc/{pid}/status").read()
            rss = int(re.search(r"VmRSS:\s+(\d+)", st).group(1))
            threads = int(re.search(r"Threads:\s+(\d+)", st).group(1))
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            return rss, fds, threads
        except (OSError, AttributeError):
            return None

    def sample(self, minute, t0):
        stat = self.proc_stat() if self.up.is_set() else None
        db = os.path.join(self.data, "metadata.db")
        size = lambda p: os.path.getsize(p) if os.path.exists(p) else 0  # noqa: E731
        with self.lock:
            lat = {k: v for k, v in self.lat.items()}
            self.lat = {k: [] for k in ACTIVITIES}
            counts = dict(self.counts)
            abandoned, self.abandoned = self.abandoned, 0
        if self.a.backend == "postgres-s3":
            p = subprocess.run(["psql", "-X", "-t", "-A", os.environ["WHARF_DATABASE_URL"], "-c",
                                "SELECT pg_database_size(current_database())"], capture_output=True, text=True)
            db_bytes = int(p.stdout.strip() or 0)
        else:
            db_bytes = size(db)
        row = [minute, round(time.time() - t0), *(stat or ("", "", "")), db_bytes, size(db + "-wal"),
               self.scratch_files(), counts["ops"], counts["failures"], counts["interrupted"], self.kills]
        for k in ACTIVITIES:
            xs = sorted(lat[k])
            if xs:
                row += [round(1000 * xs[len(xs) // 2], 1), round(1000 * xs[min(len(xs) - 1, int(0.99 * len(xs)))], 1)]
            else:
                row += ["", ""]
        row.append(abandoned)
        self.csv.write(",".join(map(str, row)) + "\n")
        self.csv.flush()
        log(f"minute {minute}: rss {stat[0] if stat else '-'} kB fds {stat[1] if stat else '-'} threads "
            f"{stat[2] if stat else '-'} db {db_bytes + size(db + '-wal')} B scratch {self.scratch_files()} "
            f"ops {counts['ops']} failures {counts['failures']} interrupted {counts['interrupted']}")

    def kill_and_restart(self):
        log(f"kill -9 {self.proc.pid}")
        self.up.clear()
        self.epoch += 1
        self.kills += 1
        with self.lock:
            inflight = set(self.api_inflight)
        self.stop_server(signal.SIGKILL)
        self.integrity(f"after kill {self.kills}")
        self.start_server()
        self.up.set()
        self.verify_acked(f"after restart {self.kills}", inflight)

    # ------------------------------------------------------------------ run
    def run(self):
        self.start_server()
        self._ctx = self.ssl_ctx()
        self.docker_tags, self.skopeo_tags, self.signed_once = set(), set(), False
        self.setup()
        self.up.set()
        self.csv = open(os.path.join(self.out, "samples.csv"), "w")
        cols = ["minute", "t_s", "rss_kb", "fds", "threads", "db_bytes", "wal_bytes", "scratch_files", "ops",
                "failures", "interrupted", "kills"]
        for k in ACTIVITIES:
            cols += [f"{k}_p50_ms", f"{k}_p99_ms"]
        cols.append("abandoned_uploads")
        self.csv.write(",".join(cols) + "\n")
        plan = [
            ("api_push", self.api_push, 1.0), ("api_push", self.api_push, 1.0), ("api_pull", self.api_pull, 0.5),
            ("api_pull", self.api_pull, 0.5), ("docker_push", self.docker_push, 8), ("docker_pull", self.docker_pull, 8),
            ("skopeo_push", self.skopeo_push, 10), ("skopeo_pull", self.skopeo_pull, 10),
            ("signed_push", self.signed_push, 15), ("trust_read", self.trust_read, 2), ("token_good", self.token_good, 2),
            ("token_bad", self.token_bad, 5), ("portal", self.portal, 3), ("admin_api", self.admin_api, 5),
            ("aborted", self.aborted, 3), ("slow_upload", self.slow_upload, 2), ("slow_download", self.slow_download, 2),
        ]
        threads = [threading.Thread(target=self.loop, args=p, daemon=True, name=p[0]) for p in plan]
        for t in threads:
            t.start()
        t0 = time.time()
        end = t0 + 60 * self.a.minutes
        next_sample = t0 + self.a.sample_seconds
        next_kill = t0 + 60 * self.a.kill_every if self.a.kill_every else float("inf")
        minute = 0
        while time.time() < end:
            time.sleep(1)
            if time.time() >= next_kill and time.time() < end - 30:
                self.kill_and_restart()
                next_kill += 60 * self.a.kill_every
            if time.time() >= next_sample:
                minute += 1
                self.sample(minute, t0)
                next_sample += self.a.sample_seconds
        log("load stopped; waiting for the workers")
        self.stop.set()
        for t in threads:
            t.join(timeout=400)
        self.verify_acked("end of load")
        # Abandoned uploads: gone once idle past the timeout (plus one housekeeping pass).
        wait = UPLOAD_IDLE + 75
        log(f"waiting {wait} s for the upload idle timeout and a housekeeping pass")
        time.sleep(wait)
        left = self.scratch_files()
        line = f"scratch files {wait} s after the load stopped: {left}"
        log(line)
        self.checks.append(line)
        if left:
            self.fail_now(f"LEAK {line}: {os.listdir(os.path.join(self.data, 'storage/uploads'))[:5]}")
        self.stop_server(signal.SIGTERM)
        self.integrity("after a clean stop")
        self.csv.close()
        return self.verdict(t0)

    def verdict(self, t0):
        rows = [l.rstrip("\n").split(",") for l in open(os.path.join(self.out, "samples.csv"))]
        cols, rows = rows[0], rows[1:]
        col = lambda name: [float(r[cols.index(name)]) for r in rows if r[cols.index(name)] != ""]  # noqa: E731
        summary = []
        ok = True
        n = len(rows)
        rules = [("rss_kb", 1.10, 8192, "kB"), ("fds", 1.10, 16, ""), ("threads", 1.10, 4, ""),
                 ("api_pull_p50_ms", 2.0, 20, "ms")]
        # Scratch files: an abandoned upload keeps its file until it has been idle for the
        # timeout and a housekeeping pass (every 60 s) has run, so a sample may see those
        # abandoned in the last UPLOAD_IDLE + 2 x 60 s, plus the sessions open right then (at
        # most one per upload worker). Any file beyond that bound is a leak.
        scratch, abandoned = col("scratch_files"), col("abandoned_uploads")
        window = max(1, -(-(UPLOAD_IDLE + 120) // int(self.a.sample_seconds)))
        over = [(i + 1, int(x), int(sum(abandoned[max(0, i - window):i + 1])) + 5)
                for i, x in enumerate(scratch) if x > sum(abandoned[max(0, i - window):i + 1]) + 5]
        summary.append(f"scratch_files: max {max(scratch, default=0):g}; bound per sample = uploads abandoned in the "
                       f"last {window + 1} samples + 5 open sessions: " + ("ok" if not over else
                       "OVER at " + ", ".join(f"sample {m}: {x} > {b}" for m, x, b in over[:5])))
        ok &= not over
        for name, factor, floor, unit in rules:
            xs = col(name)
            # One sample per third would judge the allocator's sawtooth, not a trend.
            if len(xs) < 9:
                summary.append(f"{name}: too few samples ({len(xs)}, need 9) to judge")
                continue
            third = len(xs) // 3
            mid, last = statistics.median(xs[third:2 * third]), statistics.median(xs[2 * third:])
            limit = mid * factor + floor
            judged = not (self.a.kill_every and name in ("rss_kb", "fds", "threads"))
            good = last <= limit
            state = ("ok" if good else "GROWS") if judged else "reported only (kill mode)"
            summary.append(f"{name}: middle third median {mid:g}{unit}, last third median {last:g}{unit}, "
                           f"limit {limit:g}{unit}, max {max(xs):g}{unit}: {state}")
            ok &= good or not judged
        db = [a + b for a, b in zip(col("db_bytes"), col("wal_bytes"))]
        if len(db) >= 3:
            third = len(db) // 3
            hours = (n - third) * self.a.sample_seconds / 3600
            main = col("db_bytes")
            # The WAL is reused in place (about 4 MB here) and restarts after a kill, so the
            # main file's growth is the trend; the sum is there for the total on disk.
            summary.append(f"database ({'metadata.db' if self.a.backend == 'embedded' else 'pg_database_size'}): {main[third] / 1e6:.2f} MB at the end of the first third, {main[-1] / 1e6:.2f} MB "
                           f"at the end: {(main[-1] - main[third]) / 1e6 / hours:.2f} MB/hour; WAL at most "
                           f"{max(col('wal_bytes')) / 1e6:.2f} MB (reported, not judged)")
            summary.append(f"db+wal: {db[third] / 1e6:.2f} MB at the end of the first third, {db[-1] / 1e6:.2f} MB at the "
                           f"end: {(db[-1] - db[third]) / 1e6 / hours:.2f} MB/hour (reported, not judged)")
        lat_lines = []
        for k in ACTIVITIES:
            p50, p99 = col(f"{k}_p50_ms"), col(f"{k}_p99_ms")
            if p50:
                lat_lines.append(f"  {k:14s} p50 median {statistics.median(p50):8.1f} ms, p99 median "
                                 f"{statistics.median(p99):8.1f} ms, p99 max {max(p99):8.1f} ms")
        with self.lock:
            counts = dict(self.counts)
        ok &= counts["failures"] == 0
        text = [
            f"Wharf soak: {self.a.minutes} min, backend {self.a.backend}, "
            f"kill -9 every {self.a.kill_every} min ({self.kills} kills)" if self.a.kill_every else
            f"Wharf soak: {self.a.minutes} min, backend {self.a.backend}, no kills",
            f"operations {counts['ops']}, unexpected failures {counts['failures']}, interrupted by kills {counts['interrupted']}",
            f"acknowledged manifests (distinct) {len(self.acked)}",
            *summary, "latency per activity (per-minute p50 / p99):", *lat_lines, "checks:",
            *[f"  {c}" for c in self.checks],
        ]
        if self.failures:
            text += ["failures (first 20):", *[f"  {f}" for f in self.failures[:20]]]
        text.append("VERDICT: " + ("PASS" if ok else "FAIL"))
        open(os.path.join(self.out, "summary.txt"), "w").write("\n".join(text) + "\n")
        print("\n".join(text))
        return ok

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        # By image id: a re-pushed tag leaves the image it replaced untagged (<none>).
        lines = subprocess.run(["docker", "images", "--format", "{{.ID}} {{.Repository}}"], capture_output=True,
                               text=True).stdout.splitlines()
        mine = sorted({line.split()[0] for line in lines
                       if line.split()[1].startswith((f"{self.host}/", f"wharf-soak-pool-{self.port}"))})
        if mine:
            subprocess.run(["docker", "rmi", "-f", *mine], capture_output=True)
        if not os.environ.get("SOAK_KEEP"):
            subprocess.run(["rm", "-rf", self.work])
        else:
            log(f"kept {self.work}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--minutes", type=float, default=120)
    p.add_argument("--kill-every", type=float, default=0)
    p.add_argument("--sample-seconds", type=float, default=60)
    p.add_argument("--backend", choices=["embedded", "postgres-s3"], default="embedded")
    a = p.parse_args()
    s = Soak(a)
    ok = False
    try:
        ok = s.run()
    finally:
        s.cleanup()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
