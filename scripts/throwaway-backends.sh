# Sourced by scripts/bench-scale.sh and scripts/soak.sh: a throw-away PostgreSQL cluster and a
# one-node Garage (S3) in a temp dir, on loopback ports of their own. Run as root (initdb runs
# as `postgres`). The caller defines `log` and `die`.
#
#   throwaway_postgres DIR             -> PG_BIN, PGPORT, THROWAWAY_DATABASE_URL (database `wharf`)
#   throwaway_garage DIR KEY BUCKET…   -> GARAGE, GARAGE_PID, G_S3, S3_URL, S3_KEY, S3_SECRET
#   throwaway_stop DIR                 -> stops what was started (safe to call twice)
#
# PostgreSQL keeps Debian's defaults (fsync, synchronous_commit, full_page_writes on: what a
# deployment runs); Garage keeps its own (no data/metadata fsync), as a deployment gets them.

throwaway_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

throwaway_postgres() {
  local dir=$1
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$PG_BIN/initdb" ] || die "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (install postgresql)"
  chmod 711 "$dir"   # initdb runs as postgres and must reach $dir/pg
  mkdir "$dir/pg"; chown postgres:postgres "$dir/pg"
  PGPORT=$(throwaway_port)
  log "starting PostgreSQL ($PG_BIN) on 127.0.0.1:$PGPORT"
  (cd "$dir/pg" && runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/pg/data" -U wharf --auth=trust -E UTF8 --locale=C) \
    >"$dir/pg-initdb.log" 2>&1 || { cat "$dir/pg-initdb.log" >&2; die "initdb failed"; }
  THROWAWAY_PG_STARTED=1
  (cd "$dir/pg" && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w -t 60 \
    -o "-p $PGPORT -k $dir/pg -c listen_addresses=127.0.0.1" start) >/dev/null 2>&1 \
    || { tail -n 20 "$dir/pg/log" >&2; die "PostgreSQL did not start"; }
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U wharf wharf || die "createdb failed"
  THROWAWAY_DATABASE_URL=postgres://wharf@127.0.0.1:$PGPORT/wharf
}

throwaway_garage() {
  local dir=$1 key=$2 node_id= b
  shift 2
  GARAGE=${WHARF_GARAGE:-/var/cache/wharf-tools/garage/bin/garage}
  [ -x "$GARAGE" ] || GARAGE=$(command -v garage) || die "no Garage (run scripts/install-garage.sh)"
  mkdir -p "$dir/garage"
  local rpc admin
  rpc=$(throwaway_port); G_S3=$(throwaway_port); admin=$(throwaway_port)
  cat >"$dir/garage/garage.toml" <<GARAGE_TOML
metadata_dir = "$dir/garage/meta"
data_dir = "$dir/garage/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(openssl rand -hex 32)"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$G_S3"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$admin"
GARAGE_TOML
  log "starting Garage ($("$GARAGE" --version 2>/dev/null | awk '{print $2}')) S3 on 127.0.0.1:$G_S3"
  "$GARAGE" -c "$dir/garage/garage.toml" server >"$dir/garage/garage.log" 2>&1 &
  GARAGE_PID=$!
  local g=("$GARAGE" -c "$dir/garage/garage.toml")
  for _ in $(seq 1 300); do
    node_id=$("${g[@]}" node id -q 2>/dev/null | cut -d@ -f1) && [ -n "$node_id" ] && break
    kill -0 "$GARAGE_PID" 2>/dev/null || { tail -n 20 "$dir/garage/garage.log" >&2; die "Garage exited"; }
    sleep 0.1
  done
  [ -n "$node_id" ] || die "Garage did not answer 'node id'"
  # `node id` answers from its key file before RPC listens: retry the layout change.
  for _ in $(seq 1 300); do "${g[@]}" layout assign -z dc1 -c 1G "$node_id" >/dev/null 2>&1 && break; sleep 0.1; done
  "${g[@]}" layout apply --version 1 >/dev/null || die "garage layout apply failed"
  local up=
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$G_S3") 2>/dev/null && up=1 && break; sleep 0.1; done
  [ -n "$up" ] || die "Garage S3 port never opened"
  "${g[@]}" key create "$key" >"$dir/garage/key.txt" || die "garage key create failed"
  S3_KEY=$(awk '/Key ID:/{print $NF}' "$dir/garage/key.txt")
  S3_SECRET=$(awk '/Secret key:/{print $NF}' "$dir/garage/key.txt")
  [ -n "$S3_KEY" ] && [ -n "$S3_SECRET" ] || die "no key in garage key create's output"
  for b in "$@"; do
    "${g[@]}" bucket create "$b" >/dev/null || die "garage bucket create $b failed"
    "${g[@]}" bucket allow --read --write --owner "$b" --key "$key" >/dev/null || die "garage bucket allow $b failed"
  done
  S3_URL=http://127.0.0.1:$G_S3
}

throwaway_stop() {
  local dir=$1
  if [ -n "${GARAGE_PID:-}" ]; then
    kill "$GARAGE_PID" 2>/dev/null || true
    wait "$GARAGE_PID" 2>/dev/null || true
    GARAGE_PID=
  fi
  if [ -n "${THROWAWAY_PG_STARTED:-}" ]; then
    (cd "$dir/pg" && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/pg/data" -m immediate -w stop) >/dev/null 2>&1 || true
    THROWAWAY_PG_STARTED=
  fi
}
