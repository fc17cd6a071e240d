#!/usr/bin/python3
"""Writes fuzz/corpus-seed/ (small, committed) from the captured notary fixtures and
hand-written documents, and the fixed keys' IDs into fuzz/dict/tuf.dict's key lines.
Rerun after changing the fixed keys in fuzz/src/lib.rs (seeds 1..5)."""
import base64, hashlib, json, os, glob, shutil
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = "/work/shared/fixtures/notary"
OUT = os.path.join(HERE, "corpus-seed")

def canonical(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

def key(seed):
    sk = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    pub = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    obj = {"keytype": "ed25519", "keyval": {"private": None, "public": base64.b64encode(pub).decode()}}
    return hashlib.sha256(canonical(obj)).hexdigest(), obj

def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

shutil.rmtree(OUT, ignore_errors=True)
metadata = sorted(glob.glob(f"{FIX}/docker/*.json"))[:14] + sorted(glob.glob(f"{FIX}/crafted/*/*.json"))[:10]
ROLES = ["root", "targets", "snapshot", "timestamp", "targets/releases", "targets/a/b"]
for path in metadata:
    data = open(path, "rb").read()
    if len(data) > 12000:
        continue
    name = os.path.basename(path)
    put("canonical_json", name, data)
    role = next((i for i, r in enumerate(ROLES) if f"-{r.replace('/', '%2F')}." in name or f"--{r}." in name), 1)
    put("tuf_metadata", name, bytes([role]) + data)

EXP = "2029-11-23T16:00:00Z"
deleg_id, deleg_key = key(3)
digest = {"sha256": base64.b64encode(hashlib.sha256(b"manifest").digest()).decode()}
targets = {"_type": "Targets", "delegations": {"keys": {}, "roles": []}, "expires": EXP,
           "targets": {"latest": {"hashes": digest, "length": 8}}, "version": 1}
put("tuf_update", "targets", json.dumps({"targets": targets}))
with_deleg = dict(targets, delegations={"keys": {deleg_id: deleg_key}, "roles": [
    {"name": "targets/releases", "keyids": [deleg_id], "threshold": 1, "paths": [""]}]})
releases = {"_type": "Targets", "delegations": {"keys": {}, "roles": []}, "expires": EXP,
            "targets": {"v1": {"hashes": digest, "length": 8}}, "version": 1}
put("tuf_update", "delegation", json.dumps({"targets": with_deleg, "targets/releases": releases}))
snapshot = {"_type": "Snapshot", "expires": EXP, "meta": {}, "version": 1}
put("tuf_update", "client-snapshot", json.dumps({"targets": targets, "snapshot": snapshot}))

H = "sha256:" + hashlib.sha256(b"x").hexdigest()
desc = lambda mt, size=2: {"mediaType": mt, "digest": H, "size": size}
oci = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": desc("application/vnd.oci.image.config.v1+json"),
       "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", 100)]}
put("manifest", "oci", b"\x00" + json.dumps(oci).encode())
docker = dict(oci, mediaType="application/vnd.docker.distribution.manifest.v2+json",
              config=desc("application/vnd.docker.container.image.v1+json"),
              layers=[desc("application/vnd.docker.image.rootfs.diff.tar.gzip", 5),
                      dict(desc("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", 7), urls=["https://x"])])
put("manifest", "docker", b"\x03" + json.dumps(docker).encode())
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [dict(desc("application/vnd.oci.image.manifest.v1+json"), platform={"os": "linux", "architecture": "amd64"})]}
put("manifest", "index", b"\x02" + json.dumps(index).encode())
referrer = dict(oci, artifactType="application/vnd.example.sbom", subject=desc("application/vnd.oci.image.manifest.v1+json"),
                annotations={"org.opencontainers.image.created": "2026-11-23T16:00:00Z"})
put("manifest", "referrer", b"\x00" + json.dumps(referrer).encode())

b = "d7b4b5a1c47b2e8e7f9b9e3b5f6d6c0a1b2c3d4e5f60718293a4b5c6d7e8"
body = "".join(f'--{b}\r\nContent-Disposition: form-data; name="files"; filename="{n}"\r\n'
               f'Content-Type: application/octet-stream\r\n\r\n{{"signed":{{}},"signatures":[]}}\r\n' for n in ["root", "targets/releases"])
put("multipart", "go-writer", f"multipart/form-data; boundary={b}\n{body}--{b}--\r\n")
put("multipart", "quoted", f'multipart/form-data; boundary="{b}"\n--{b}\r\nContent-Disposition: form-data; name="files"; filename="a\\"b"\r\n\r\nx\r\n--{b}--')

for i, s in enumerate(["library/alpine", "a/b-c/d__e.f", "reg.example.com/app", "127.0.0.1:5000/x",
                       "latest", "v1.0_rc-1", H, "sha512:" + "a" * 128, "Sha256:" + "A" * 64]):
    put("names", f"n{i}", s)

claims = {"iss": "wharf", "sub": "alice", "aud": "reg.example.com", "exp": 1800000300, "nbf": 1799999990,
          "iat": 1799999990, "wharf_iat_ms": 1799999990000, "jti": "abc",
          "access": [{"type": "repository", "name": "library/alpine", "actions": ["pull", "push"]}]}
put("jwt", "claims", b"\x01\x1e" + json.dumps(claims).encode())
put("jwt", "header", b"\x02\x1e" + json.dumps({"alg": "ES256", "typ": "JWT", "kid": "00"}).encode())
put("jwt", "token", b"\x00\x1e" + b"eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhIn0.c2ln")

put("config", "full", """listen = "127.0.0.1:5000"
data_dir = "/var/lib/wharf"
public_hosts = ["reg.example.com"]

[limits]
manifest_max_bytes = 4194304
max_connections = 1024

[gc]
interval_seconds = 86400
""")
put("config", "env", "WHARF_LIMITS_MAX_CONNECTIONS=10\nWHARF_STORAGE_BACKEND=s3\nWHARF_DATABASE_URL=postgres://x\n")
# Key files: docker's own (encrypted with "repopass"), and plain PKCS#8 / SEC1 forms of a fixed
# P-256 key; mode 0 = the text, mode 1 = label byte + the DER the harness wraps in PEM.
from cryptography.hazmat.primitives.asymmetric import ec
alice = open(os.path.join(HERE, "../crates/wharf-tuf/tests/fixtures/docker-alice.key"), "rb").read()
put("keyfile", "docker-alice", b"\x00" + alice)
alice_der = base64.b64decode("".join(l for l in alice.decode().splitlines() if l and ":" not in l and "-----" not in l))
put("keyfile", "docker-alice-der", b"\x01\x00" + alice_der)
ec_key = ec.derive_private_key(0x5eed, ec.SECP256R1())
for name, fmt, label in [("pkcs8", serialization.PrivateFormat.PKCS8, 1),
                         ("sec1", serialization.PrivateFormat.TraditionalOpenSSL, 2)]:
    pem = ec_key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    put("keyfile", f"plain-{name}", b"\x00" + pem.replace(b"KEY-----\n", b"KEY-----\nrole: fuzz\n\n", 1))
    der = ec_key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
    put("keyfile", f"plain-{name}-der", bytes([1, label]) + der)

print("key lines for tuf.dict:", deleg_id)
