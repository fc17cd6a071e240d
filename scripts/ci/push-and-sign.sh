#!/usr/bin/env bash
# Push an image from an OCI layout and sign it with Docker Content Trust — no Docker
# daemon on the runner: skopeo pushes, `wharf trust sign` signs. The pipeline files in
# docs/ci/ call this script, and crates/wharf/tests/ci_pipeline.rs runs it as they do.
#
# Required environment (pipeline secrets marked *):
#   WHARF_REGISTRY          host[:port] of the registry
#   WHARF_CLIENT_ID         the service principal's client id (`wharf sp create`)
#   WHARF_CLIENT_SECRET *   its secret
#   WHARF_KEY_BACKUP        file holding `wharf trust key backup` of the signer's key *
#   WHARF_BACKUP_PASSPHRASE *        the backup's passphrase
#   DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE *   the signer key's own passphrase
#   IMAGE_LAYOUT            OCI layout directory (the build's output), e.g. build/oci:app
#   IMAGE                   REPOSITORY:TAG to push and sign
# Optional: WHARF_CA_FILE (a private CA's certificate, for wharf) and WHARF_CERT_DIR (a
# directory holding it as ca.crt, for skopeo).
set -euo pipefail

for v in WHARF_REGISTRY WHARF_CLIENT_ID WHARF_CLIENT_SECRET WHARF_KEY_BACKUP \
         WHARF_BACKUP_PASSPHRASE DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE IMAGE_LAYOUT IMAGE; do
  if [ -z "${!v:-}" ]; then echo "push-and-sign: $v is not set" >&2; exit 2; fi
done

# A Docker config of the job's own: the login and the restored key never outlive the job.
if [ -z "${DOCKER_CONFIG:-}" ]; then
  DOCKER_CONFIG=$(mktemp -d)
  trap 'rm -rf "$DOCKER_CONFIG"' EXIT
fi
export DOCKER_CONFIG
ca_args=()
[ -n "${WHARF_CA_FILE:-}" ] && ca_args=(--ca-file "$WHARF_CA_FILE")
copy_cert=()
[ -n "${WHARF_CERT_DIR:-}" ] && copy_cert=(--dest-cert-dir "$WHARF_CERT_DIR")

# The secret goes through standard input, never on a command line (`ps` shows those).
# skopeo uses the login wharf stored (a refresh token in the Docker config).
printf '%s\n' "$WHARF_CLIENT_SECRET" |
  wharf login "$WHARF_REGISTRY" -u "$WHARF_CLIENT_ID" --password-stdin "${ca_args[@]}"
wharf trust key restore "$WHARF_KEY_BACKUP"
skopeo copy --dest-authfile "$DOCKER_CONFIG/config.json" "${copy_cert[@]}" \
  "oci:$IMAGE_LAYOUT" "docker://$WHARF_REGISTRY/$IMAGE"
wharf trust sign "$WHARF_REGISTRY/$IMAGE"
