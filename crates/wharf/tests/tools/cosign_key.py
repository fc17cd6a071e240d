#!/usr/bin/env python3
"""Generate a cosign/sigstore key pair that skopeo (`--sign-by-sigstore-private-key`) and
podman accept, without cosign: skopeo 1.9 cannot generate keys itself
(`skopeo generate-sigstore-key` came later) and cosign is not packaged in Debian.

usage: cosign_key.py [--pem-type cosign|sigstore] NAME PASSPHRASE
writes NAME.key (0600) and NAME.pub, prints the two paths

NAME.key is the encrypted private key: a PEM block around a JSON envelope. Its PEM type is
`ENCRYPTED COSIGN PRIVATE KEY` by default (cosign 1.x's label, the only one skopeo 1.9 /
containers/image 5.22-5.23 accept: "unsupported pem type: ENCRYPTED SIGSTORE PRIVATE KEY"),
or `ENCRYPTED SIGSTORE PRIVATE KEY` with --pem-type sigstore (cosign 2.x's label, which
later containers/image versions read as well). The envelope is the same for both:
  {"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":B64},
   "cipher":{"name":"nacl/secretbox","nonce":B64},
   "ciphertext":B64}
where the secretbox key is scrypt(passphrase, salt, 32 bytes), the plaintext is the
PKCS#8 DER of an ECDSA P-256 private key, and B64 is standard base64 with padding
(how Go's encoding/json writes []byte). NAME.pub is the SPKI `PUBLIC KEY` PEM.

Debian's python3-cryptography and python3-nacl (scripts/install-deps.sh).
"""
import argparse, base64, json, os

import nacl.secret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

# The parameters cosign and containers/image write (and therefore certainly read).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 32768, 8, 1
SALT_SIZE = 32
PEM_TYPES = {
    "cosign": "ENCRYPTED COSIGN PRIVATE KEY",
    "sigstore": "ENCRYPTED SIGSTORE PRIVATE KEY",
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def pem(kind: str, der: bytes) -> bytes:
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return ("-----BEGIN %s-----\n%s\n-----END %s-----\n" % (kind, "\n".join(lines), kind)).encode()


def encrypt_private_key(pkcs8_der: bytes, passphrase: bytes) -> bytes:
    salt = os.urandom(SALT_SIZE)
    key = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase)
    nonce = os.urandom(nacl.secret.SecretBox.NONCE_SIZE)
    # EncryptedMessage.ciphertext is the box without the nonce prefix PyNaCl adds: the
    # envelope carries the nonce in its own field.
    sealed = nacl.secret.SecretBox(key).encrypt(pkcs8_der, nonce).ciphertext
    envelope = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
            "salt": b64(salt),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
        "ciphertext": b64(sealed),
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate a cosign-format ECDSA P-256 key pair.")
    parser.add_argument("--pem-type", choices=sorted(PEM_TYPES), default="cosign")
    parser.add_argument("name", help="writes NAME.key and NAME.pub")
    parser.add_argument("passphrase")
    args = parser.parse_args()
    name, passphrase = args.name, args.passphrase.encode()
    private = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_path, pub_path = name + ".key", name + ".pub"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem(PEM_TYPES[args.pem_type], encrypt_private_key(pkcs8, passphrase)))
    with open(pub_path, "wb") as f:
        f.write(pem("PUBLIC KEY", spki))
    print(key_path)
    print(pub_path)


if __name__ == "__main__":
    main()
