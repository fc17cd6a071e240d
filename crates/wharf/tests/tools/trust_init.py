#!/usr/bin/env python3
"""Publish a complete first trust update (root + targets, server-managed snapshot and
timestamp) for one GUN, the way a notary client's `init --publish` does, but over a
request the test shapes itself: any GUN in the path, any Host header, any bearer token.
The security tests use it to make uploads that *would* be accepted, so that a refusal
can only come from the name or the caller, never from the metadata.

usage: trust_init.py BASE_URL GUN [--host HOST] [--token TOKEN] [--ca CA_FILE]
                     [--boundary-length N] [--signatures N] [--targets-expires TEXT]
                     [--target NAME=SHA256HEX:LENGTH]
prints one JSON line: {"keys": status, "status": status, "body": "..."}

The last three shape hostile uploads from the security review: a multipart boundary of
N characters (our own encoding, as Go's writer lays it out), the targets file carrying
its valid signature N times, a targets `expires` written as given.

Our own small TUF signer (independent of the server's Rust code): canonical JSON as
docker/go writes it, ECDSA P-256 keys, a self-signed root certificate with CN = GUN.
"""
import argparse, base64, datetime, hashlib, json, sys

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def canonical(v):
    if v is None:
        return b"null"
    if v is True:
        return b"true"
    if v is False:
        return b"false"
    if isinstance(v, int):
        return str(v).encode()
    if isinstance(v, str):
        return b'"' + v.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    if isinstance(v, list):
        return b"[" + b",".join(canonical(x) for x in v) + b"]"
    items = sorted(v.items(), key=lambda kv: kv[0].encode())
    return b"{" + b",".join(canonical(k) + b":" + canonical(x) for k, x in items) + b"}"


def key_id(key):
    return hashlib.sha256(canonical({"keytype": key["keytype"],
                                     "keyval": {"private": None, "public": key["keyval"]["public"]}})).hexdigest()


def signed_file(signed, signers, copies=1):
    msg = canonical(signed)
    sigs = []
    for kid, priv in signers:
        r, s = utils.decode_dss_signature(priv.sign(msg, ec.ECDSA(hashes.SHA256())))
        sig = base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()
        sigs.append({"keyid": kid, "method": "ecdsa", "sig": sig})
    # A repeated signature is the same bytes again: no need to sign it twice.
    return b'{"signed":' + msg + b',"signatures":' + canonical(sigs * copies) + b"}"


def multipart(boundary, files):
    out = b""
    for name, body in files:
        out += (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"files\"; filename=\"" + name.encode()
                + b"\"\r\nContent-Type: application/octet-stream\r\n\r\n" + body + b"\r\n")
    return out + b"--" + boundary + b"--\r\n"


def go_time(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("base")
    p.add_argument("gun")
    p.add_argument("--host")
    p.add_argument("--token")
    p.add_argument("--ca")
    p.add_argument("--boundary-length", type=int)
    p.add_argument("--signatures", type=int, default=1)
    p.add_argument("--targets-expires")
    p.add_argument("--target", help="NAME=SHA256HEX:LENGTH, signed instead of the made-up v1")
    a = p.parse_args()
    headers = {}
    if a.host:
        headers["Host"] = a.host
    if a.token:
        headers["Authorization"] = "Bearer " + a.token
    url = a.base.rstrip("/") + "/v2/" + a.gun + "/_trust/tuf/"
    verify = a.ca or True

    server_keys = {}
    for role in ("timestamp", "snapshot"):
        r = requests.get(url + role + ".key", headers=headers, verify=verify)
        if r.status_code != 200:
            print(json.dumps({"keys": r.status_code, "status": None, "body": r.text}))
            return
        k = r.json()
        server_keys[role] = {"keytype": k["keytype"], "keyval": {"private": None, "public": k["keyval"]["public"]}}

    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    root_priv = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, a.gun)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(root_priv.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(root_priv, hashes.SHA256()))
    root_key = {"keytype": "ecdsa-x509", "keyval": {"private": None, "public": base64.b64encode(
        cert.public_bytes(serialization.Encoding.PEM)).decode()}}
    targets_priv = ec.generate_private_key(ec.SECP256R1())
    targets_key = {"keytype": "ecdsa", "keyval": {"private": None, "public": base64.b64encode(
        targets_priv.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)).decode()}}
    keys = {key_id(k): k for k in (root_key, targets_key, server_keys["timestamp"], server_keys["snapshot"])}
    root = {"_type": "Root", "consistent_snapshot": False,
            "expires": go_time(now + datetime.timedelta(days=3650)), "keys": keys,
            "roles": {"root": {"keyids": [key_id(root_key)], "threshold": 1},
                      "targets": {"keyids": [key_id(targets_key)], "threshold": 1},
                      "snapshot": {"keyids": [key_id(server_keys["snapshot"])], "threshold": 1},
                      "timestamp": {"keyids": [key_id(server_keys["timestamp"])], "threshold": 1}},
            "version": 1}
    manifest = b'{"schemaVersion":2,"attacker":true}'
    target_name, target_sha, target_len = "v1", hashlib.sha256(manifest).digest(), len(manifest)
    if a.target:
        target_name, rest = a.target.split("=", 1)
        hex_digest, length = rest.split(":")
        target_sha, target_len = bytes.fromhex(hex_digest), int(length)
    targets = {"_type": "Targets", "delegations": {"keys": {}, "roles": []},
               "expires": a.targets_expires or go_time(now + datetime.timedelta(days=1095)),
               "targets": {target_name: {"hashes": {"sha256": base64.b64encode(target_sha).decode()},
                                         "length": target_len}},
               "version": 1}
    targets_file = signed_file(targets, [(key_id(targets_key), targets_priv)], a.signatures)
    files = [("root", signed_file(root, [(key_id(root_key), root_priv)])), ("targets", targets_file)]
    boundary = b"b" * (a.boundary_length or 60)
    body = multipart(boundary, files)
    headers["Content-Type"] = "multipart/form-data; boundary=" + boundary.decode()
    r = requests.post(url, data=body, headers=headers, verify=verify)
    print(json.dumps({"keys": 200, "status": r.status_code, "body": r.text}))


if __name__ == "__main__":
    sys.exit(main())
