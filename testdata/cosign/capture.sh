#!/usr/bin/env bash
# Capture real sigstore "simple signing" signatures made by skopeo, for the tests of
# crates/wharf-signatures (cosign.rs). See README.md beside this file.
#
#   SIGN_SKOPEO=/path/to/skopeo testdata/cosign/capture.sh OUT_DIR [PORT]
#
# Needs a skopeo with sigstore support in SIGN_SKOPEO (not Debian's, see below), docker-registry (Distribution 2.8), curl, jq, and Debian's python3 with
# cryptography + nacl (scripts/install-deps.sh). Starts docker-registry on 127.0.0.1:PORT
# (default 5055, plain HTTP) with its data in a temporary directory, and stops it again.
# Writes into OUT_DIR; nothing else is touched (skopeo is given its own policy and
# registries.d). Signatures are ECDSA, so every run gives new signature bytes; the image
# is built from fixed bytes, so its digest is the same each time.
set -euo pipefail

out=${1:?usage: capture.sh OUT_DIR [PORT]}
port=${2:-5055}
here=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$here/../.." && pwd)
keytool="$repo_root/crates/wharf/tests/tools/cosign_key.py"
host="127.0.0.1:$port"
# The skopeo that signs. Debian's skopeo 1.9.3 refuses to ("creating signature: Debian-local
# change: sigstore disabled"), so the fixtures were signed by upstream skopeo 1.9.3; see README.md.
sign_skopeo=${SIGN_SKOPEO:-skopeo}
# It must also accept the result with a sigstoreSigned policy. (Debian's skopeo cannot be the
# verifier either: it rejects any image under such a policy with "Source image rejected:
# Debian-local change: sigstore disabled".)
verify_skopeos=("$sign_skopeo")
work=$(mktemp -d /tmp/cosign-capture.XXXXXX)
mkdir -p "$out"

registry_pid=
cleanup() {
  local status=$?
  set +e # wait reports the registry's SIGTERM; that is not a failure of the capture
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null; wait "$registry_pid" 2>/dev/null; fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

echo "== keys (crates/wharf/tests/tools/cosign_key.py)"
/usr/bin/python3 "$keytool" "$work/signer" 'wharf test passphrase' >/dev/null
/usr/bin/python3 "$keytool" "$work/other" 'another passphrase' >/dev/null
printf '%s' 'wharf test passphrase' >"$work/signer.pass"
printf '%s' 'another passphrase' >"$work/other.pass"

echo "== registry on $host"
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry-data
http:
  addr: $host
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -fs "http://$host/v2/" >/dev/null && break; sleep 0.1; done
curl -fs "http://$host/v2/" >/dev/null

echo "== a one-file image as an OCI layout, from fixed bytes"
layout="$work/layout"
mkdir -p "$layout/blobs/sha256" "$work/rootfs"
printf 'hello from the wharf cosign fixtures\n' >"$work/rootfs/hello.txt"
touch -d @0 "$work/rootfs/hello.txt"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/rootfs" -cf "$work/layer.tar" hello.txt
gzip -n -9 -c "$work/layer.tar" >"$work/layer.tar.gz"
put_blob() { # file -> prints sha256 hex, stores the blob in the layout
  local hex; hex=$(sha256sum "$1" | cut -d' ' -f1)
  cp "$1" "$layout/blobs/sha256/$hex"; echo "$hex"
}
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
layer=$(put_blob "$work/layer.tar.gz")
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$diff_id" >"$work/config.json"
config=$(put_blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
  "$config" "$(stat -c %s "$work/config.json")" "$layer" "$(stat -c %s "$work/layer.tar.gz")" >"$work/manifest.json"
manifest=$(put_blob "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
  "$manifest" "$(stat -c %s "$work/manifest.json")" >"$layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"

echo "== sign while pushing ($("$sign_skopeo" --version))"
mkdir -p "$work/registries.d"
cat >"$work/registries.d/wharf-fixtures.yaml" <<EOF
docker:
  $host:
    use-sigstore-attachments: true
EOF
printf '{"default":[{"type":"insecureAcceptAnything"}]}' >"$work/policy-any.json"
set -x
"$sign_skopeo" --policy "$work/policy-any.json" copy --dest-tls-verify=false --registries.d "$work/registries.d" \
  --sign-by-sigstore-private-key "$work/signer.key" --sign-passphrase-file "$work/signer.pass" \
  "oci:$layout:v1" "docker://$host/test/app:v1"
# A second repository whose image carries two signatures: first by `other`, then by
# `signer` (skopeo adds a layer to the existing .sig manifest).
"$sign_skopeo" --policy "$work/policy-any.json" copy --dest-tls-verify=false --registries.d "$work/registries.d" \
  --sign-by-sigstore-private-key "$work/other.key" --sign-passphrase-file "$work/other.pass" \
  "oci:$layout:v1" "docker://$host/test/two:v1"
sleep 1 # a later timestamp in the payload, so the two layers carry different payloads
"$sign_skopeo" --policy "$work/policy-any.json" copy --dest-tls-verify=false --registries.d "$work/registries.d" \
  --sign-by-sigstore-private-key "$work/signer.key" --sign-passphrase-file "$work/signer.pass" \
  "oci:$layout:v1" "docker://$host/test/two:v1"
{ set +x; } 2>/dev/null

echo "== fetch what skopeo stored"
oci_accept='application/vnd.oci.image.manifest.v1+json'
digest=$(curl -fsI -H "Accept: $oci_accept" "http://$host/v2/test/app/manifests/v1" |
  tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
[ "$digest" = "sha256:$manifest" ] || { echo "pushed digest $digest != built sha256:$manifest" >&2; exit 1; }
printf '%s\n' "$digest" >"$out/image-digest.txt"
curl -fs -H "Accept: $oci_accept" "http://$host/v2/test/app/manifests/v1" >"$out/image-manifest.json"
sig_tag="sha256-${digest#sha256:}.sig"
fetch_set() { # repository, manifest file; payload blobs go to blobs/<hex>
  curl -fs -H "Accept: $oci_accept" "http://$host/v2/$1/manifests/$sig_tag" >"$out/$2"
  mkdir -p "$out/blobs"
  for d in $(jq -r '.layers[].digest' "$out/$2"); do
    curl -fs "http://$host/v2/$1/blobs/$d" >"$out/blobs/${d#sha256:}"
  done
}
fetch_set test/app signature-manifest.json
fetch_set test/two two-signatures-manifest.json
cp "$work/signer.pub" "$out/signer.pub"
cp "$work/other.pub" "$out/other.pub"

echo "== skopeo's own verification (policy sigstoreSigned)"
# The policy is evaluated on the source image whatever the destination; --remove-signatures
# only because an OCI layout cannot store signatures ("Pushing signatures for OCI images is
# not supported").
policy() { # public key -> policy file path
  printf '{"default":[{"type":"reject"}],"transports":{"docker":{"%s/test":[{"type":"sigstoreSigned","keyPath":"%s","signedIdentity":{"type":"matchRepository"}}]}}}' \
    "$host" "$1" >"$work/policy-$(basename "$1").json"
  echo "$work/policy-$(basename "$1").json"
}
for verifier in "${verify_skopeos[@]}"; do
  echo "-- $verifier ($("$verifier" --version))"
  set -x
  "$verifier" --policy "$(policy "$out/signer.pub")" copy --src-tls-verify=false --remove-signatures --registries.d "$work/registries.d" \
    "docker://$host/test/app:v1" "oci:$work/verified:v1"
  "$verifier" --policy "$(policy "$out/signer.pub")" copy --src-tls-verify=false --remove-signatures --registries.d "$work/registries.d" \
    "docker://$host/test/two:v1" "oci:$work/verified:v1"
  { set +x; } 2>/dev/null
  if "$verifier" --policy "$(policy "$out/other.pub")" copy --src-tls-verify=false --remove-signatures --registries.d "$work/registries.d" \
    "docker://$host/test/app:v1" "oci:$work/refused:v1" 2>"$work/refused.err"; then
    echo "$verifier accepted test/app with the wrong key" >&2; exit 1
  fi
  echo "$verifier refused test/app with other.pub, as it should: $(tail -n1 "$work/refused.err")"
done
echo "== done: $out"
