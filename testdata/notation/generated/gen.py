#!/usr/bin/env python3
"""Generates the Notation test cases the Notary Project's published data lacks.

The published envelopes (../notation-e2e, ../notation-go) are all RSA and
have chains of one or two certificates. These cover what they do not: ECDSA
envelopes (ES256, ES384, ES512) with a three-certificate chain, RSA-4096
(PS512) with an RSASSA-PSS-signed intermediate, and chains that break one
certificate requirement of the signature specification each, all with valid
envelope signatures so that only the broken rule can refuse them.

Written from the specifications (signature-envelope-jws.md,
signature-envelope-cose.md), independently of the Rust verifier, with
Python `cryptography`. Run from anywhere: `python3 gen.py` rewrites the files
next to it (ECDSA and PSS signatures are randomised, so bytes change; what
the tests check does not).
"""

import base64
import datetime as dt
import json
import os
import struct

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
# The e2e image the published signatures sign; the tests verify against it.
IMAGE = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9"
PAYLOAD = json.dumps(
    {
        "targetArtifact": {
            "digest": IMAGE,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": 517,
        }
    },
    separators=(",", ":"),
).encode()
CTY = "application/vnd.cncf.notary.payload.v1+json"
NOT_BEFORE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
NOT_AFTER = dt.datetime(2044, 1, 1, tzinfo=dt.timezone.utc)
SIGNED_AT = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def name(cn):
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Wharf Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def key_usage(sign=False, cert_sign=False):
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def cert(
    cn,
    key,
    issuer_cn,
    issuer_key,
    ca,
    path_len=None,
    cert_sign=None,
    eku=(ExtendedKeyUsageOID.CODE_SIGNING,),
    hash_alg=None,
    pss=False,
    not_before=NOT_BEFORE,
    serial=None,
):
    b = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(name(issuer_cn))
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(NOT_AFTER)
    )
    if ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=path_len), critical=True)
    if cert_sign is None:
        cert_sign = bool(ca)
    b = b.add_extension(key_usage(sign=not ca, cert_sign=cert_sign), critical=True)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if isinstance(issuer_key, rsa.RSAPrivateKey):
        h = hash_alg or hashes.SHA256()
        if pss:
            return b.sign(
                issuer_key,
                h,
                rsa_padding=padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size),
            )
        return b.sign(issuer_key, h)
    return b.sign(issuer_key, hash_alg or hashes.SHA384())


def der(c):
    return c.public_bytes(serialization.Encoding.DER)


def pem(c):
    return c.public_bytes(serialization.Encoding.PEM)


def raw_ecdsa(key, data, h, size):
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(h)))
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


ALGS = {
    "ES256": (hashes.SHA256, 32, -7),
    "ES384": (hashes.SHA384, 48, -35),
    "ES512": (hashes.SHA512, 66, -36),
    "PS256": (hashes.SHA256, None, -37),
    "PS384": (hashes.SHA384, None, -38),
    "PS512": (hashes.SHA512, None, -39),
}


def sign(key, alg, data):
    h, size, _ = ALGS[alg]
    if alg.startswith("ES"):
        return raw_ecdsa(key, data, h(), size)
    return key.sign(data, padding.PSS(mgf=padding.MGF1(h()), salt_length=h().digest_size), h())


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jws(key, alg, chain, extra=None, crit_extra=(), signing_time=SIGNED_AT):
    header = {
        "alg": alg,
        "crit": ["io.cncf.notary.signingScheme", *crit_extra],
        "cty": CTY,
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": signing_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    header.update(extra or {})
    protected = b64url(json.dumps(header, separators=(",", ":")).encode())
    payload = b64url(PAYLOAD)
    signature = sign(key, alg, f"{protected}.{payload}".encode())
    envelope = {
        "payload": payload,
        "protected": protected,
        "header": {
            "x5c": [base64.b64encode(der(c)).decode() for c in chain],
            "io.cncf.notary.signingAgent": "wharf-testdata-gen/1",
        },
        "signature": b64url(signature),
    }
    return json.dumps(envelope).encode()


# --- a minimal CBOR encoder (RFC 8949), enough for COSE_Sign1 ---


class Tag:
    def __init__(self, tag, value):
        self.tag, self.value = tag, value


def cbor_head(major, n):
    m = major << 5
    if n < 24:
        return bytes([m | n])
    for info, fmt, limit in ((24, ">B", 1 << 8), (25, ">H", 1 << 16), (26, ">I", 1 << 32), (27, ">Q", 1 << 64)):
        if n < limit:
            return bytes([m | info]) + struct.pack(fmt, n)
    raise ValueError(n)


def cbor(v):
    if isinstance(v, bool):
        return bytes([0xF5 if v else 0xF4])
    if isinstance(v, int):
        return cbor_head(0, v) if v >= 0 else cbor_head(1, -1 - v)
    if isinstance(v, bytes):
        return cbor_head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return cbor_head(3, len(b)) + b
    if isinstance(v, list):
        return cbor_head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict):
        return cbor_head(5, len(v)) + b"".join(cbor(k) + cbor(x) for k, x in v.items())
    if isinstance(v, Tag):
        return cbor_head(6, v.tag) + cbor(v.value)
    raise TypeError(v)


def cose(key, alg, chain, extra=None, crit_extra=()):
    protected = {
        1: ALGS[alg][2],
        2: ["io.cncf.notary.signingScheme", *crit_extra],
        3: CTY,
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": Tag(1, int(SIGNED_AT.timestamp())),
    }
    protected.update(extra or {})
    protected_bytes = cbor(protected)
    to_be_signed = cbor(["Signature1", protected_bytes, b"", PAYLOAD])
    signature = sign(key, alg, to_be_signed)
    unprotected = {33: [der(c) for c in chain], "io.cncf.notary.signingAgent": "wharf-testdata-gen/1"}
    return cbor(Tag(18, [protected_bytes, unprotected, PAYLOAD, signature]))


def write(file, data):
    with open(os.path.join(HERE, file), "wb") as f:
        f.write(data)


def main():
    # ECDSA: P-384 root -> P-256 intermediate -> P-256 / P-384 / P-521 leaves.
    ec_root_key = ec.generate_private_key(ec.SECP384R1())
    ec_root = cert("Wharf Test EC Root", ec_root_key, "Wharf Test EC Root", ec_root_key, ca=True, path_len=1)
    ec_int_key = ec.generate_private_key(ec.SECP256R1())
    ec_int = cert("Wharf Test EC Intermediate", ec_int_key, "Wharf Test EC Root", ec_root_key, ca=True, path_len=0)
    write("ec-root.pem", pem(ec_root))

    leaves = {}
    for alg, curve in (("ES256", ec.SECP256R1()), ("ES384", ec.SECP384R1()), ("ES512", ec.SECP521R1())):
        k = ec.generate_private_key(curve)
        leaves[alg] = (k, cert(f"leaf {alg}", k, "Wharf Test EC Intermediate", ec_int_key, ca=None, hash_alg=hashes.SHA256()))
    k256, leaf256 = leaves["ES256"]
    chain = [leaf256, ec_int, ec_root]
    write("es256.jws", jws(k256, "ES256", chain))
    write("es256.cose", cose(k256, "ES256", chain))
    k384, leaf384 = leaves["ES384"]
    write("es384.cose", cose(k384, "ES384", [leaf384, ec_int, ec_root]))
    k521, leaf521 = leaves["ES512"]
    write("es512.jws", jws(k521, "ES512", [leaf521, ec_int, ec_root]))

    # RSA: RSA-3072 root signs an RSA-2048 intermediate with RSASSA-PSS;
    # an RSA-4096 leaf signs PS512.
    rsa_root_key = rsa.generate_private_key(65537, 3072)
    rsa_root = cert("Wharf Test RSA Root", rsa_root_key, "Wharf Test RSA Root", rsa_root_key, ca=True)
    rsa_int_key = rsa.generate_private_key(65537, 2048)
    rsa_int = cert(
        "Wharf Test RSA Intermediate", rsa_int_key, "Wharf Test RSA Root", rsa_root_key, ca=True, pss=True
    )
    rsa_leaf_key = rsa.generate_private_key(65537, 4096)
    rsa_leaf = cert("leaf PS512", rsa_leaf_key, "Wharf Test RSA Intermediate", rsa_int_key, ca=False, hash_alg=hashes.SHA512())
    write("rsa-root.pem", pem(rsa_root))
    write("ps512.jws", jws(rsa_leaf_key, "PS512", [rsa_leaf, rsa_int, rsa_root]))

    # One broken rule each; every envelope signature is valid.
    def leaf_with(**kw):
        k = ec.generate_private_key(ec.SECP256R1())
        args = dict(cn="leaf broken", key=k, issuer_cn="Wharf Test EC Intermediate", issuer_key=ec_int_key, ca=None)
        args.update(kw)
        return k, cert(**args)

    k, c = leaf_with(ca=True)
    write("bad-leaf-ca.jws", jws(k, "ES256", [c, ec_int, ec_root]))
    k, c = leaf_with(eku=(ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.SERVER_AUTH))
    write("bad-leaf-serverauth.jws", jws(k, "ES256", [c, ec_int, ec_root]))
    k, c = leaf_with(not_before=dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc))
    write("bad-signed-before-valid.jws", jws(k, "ES256", [c, ec_int, ec_root]))

    # An intermediate whose keyUsage lacks keyCertSign.
    int_key = ec.generate_private_key(ec.SECP256R1())
    weak_int = cert("Wharf Test EC Intermediate", int_key, "Wharf Test EC Root", ec_root_key, ca=True, cert_sign=False)
    k, c = leaf_with(issuer_key=int_key)
    write("bad-intermediate-no-certsign.jws", jws(k, "ES256", [c, weak_int, ec_root]))

    # pathLenConstraint: the intermediate allows no CA below it, yet a second
    # intermediate sits there.
    int2_key = ec.generate_private_key(ec.SECP256R1())
    int2 = cert("Wharf Test EC Intermediate 2", int2_key, "Wharf Test EC Intermediate", ec_int_key, ca=True)
    k, c = leaf_with(issuer_cn="Wharf Test EC Intermediate 2", issuer_key=int2_key)
    write("bad-pathlen.jws", jws(k, "ES256", [c, int2, ec_int, ec_root]))

    # Chains in the wrong order and without their root.
    write("bad-order.jws", jws(k256, "ES256", [leaf256, ec_root, ec_int]))
    write("bad-no-root.jws", jws(k256, "ES256", [leaf256, ec_int]))

    # Critical attributes this verifier cannot process.
    write(
        "bad-plugin.cose",
        cose(
            k256,
            "ES256",
            chain,
            extra={"io.cncf.notary.verificationPlugin": "com.example.plugin"},
            crit_extra=("io.cncf.notary.verificationPlugin",),
        ),
    )
    write(
        "bad-unknown-crit.jws",
        jws(k256, "ES256", chain, extra={"com.example.policy": "x"}, crit_extra=("com.example.policy",)),
    )


if __name__ == "__main__":
    main()
