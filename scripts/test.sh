#!/usr/bin/env bash
# The whole test suite, on both backends: PostgreSQL 15 + PostGIS 3 with Redis and an
# S3-compatible server (scale-out mode), and SQLite with local disk (embedded mode). Installs and starts what is missing first, so it works on a fresh
# Debian 12 machine (as root, or with sudo). Only loopback addresses are used.
#
#   scripts/test.sh                # everything
#   scripts/test.sh auth::         # only tests whose name matches (nextest filter)
#   SERVICES_ONLY=1 scripts/test.sh  # install and start the services, run nothing (scripts/soak.sh)
#   TEST_RUNNER=cargo scripts/test.sh --skip x  # the suite under plain `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
PG_VERSION=15
export TEST_PG_URL="${TEST_PG_URL:-postgres://pupmatch_test:pupmatch_test@127.0.0.1:5432/postgres}"
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
export TEST_S3_ENDPOINT="${TEST_S3_ENDPOINT:-http://127.0.0.1:9100}"
MOTO_VENV="${MOTO_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pupmatch-moto}"
# A PostgreSQL cluster and a Redis that accept only TLS, with certificates from a throwaway CA.
export TEST_TLS_DIR="${TEST_TLS_DIR:-/tmp/pupmatch-test-tls}"
export TEST_TLS_PG_PORT="${TEST_TLS_PG_PORT:-5433}"
export TEST_TLS_REDIS_PORT="${TEST_TLS_REDIS_PORT:-6380}"
TLS_CLUSTER=pupmatch_tls
# A PostgreSQL primary with a streaming replica of its own (the read-replica tests pause its
# replay and stop it, so it is apart from the cluster every other test uses).
export TEST_PRIMARY_PG_PORT="${TEST_PRIMARY_PG_PORT:-5434}"
export TEST_REPLICA_PG_PORT="${TEST_REPLICA_PG_PORT:-5435}"
PRIMARY_CLUSTER=pupmatch_primary
REPLICA_CLUSTER=pupmatch_replica

log() { printf '==> %s\n' "$*"; }

# 1. Packages --------------------------------------------------------------------------------
missing=()
[ -x "/usr/lib/postgresql/$PG_VERSION/bin/postgres" ] || missing+=("postgresql-$PG_VERSION")
[ -f "/usr/share/postgresql/$PG_VERSION/extension/postgis.control" ] || missing+=("postgresql-$PG_VERSION-postgis-3")
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# A real reverse proxy for the load-balancer tests (started by the tests themselves).
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
# A real browser for the moderation console's tests (driven over WebDriver by the tests).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
# Node.js for the real GraphQL clients in tests/clients (Apollo Client, the spec's audit suite).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# promtool, to check the alert rules and run their unit tests (Debian's prometheus, without the
# exporters it recommends; its service is not started).
if ! command -v promtool >/dev/null 2>&1; then
  log "installing prometheus (promtool)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# 2. PostgreSQL -------------------------------------------------------------------------------
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL $PG_VERSION"
  if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$PG_VERSION main$"; then
    $SUDO pg_createcluster "$PG_VERSION" main >/dev/null
  fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  pg_isready -h 127.0.0.1 -p 5432
fi
# A superuser for the tests (PostGIS needs one to be installed into the template database).
if ! psql "$TEST_PG_URL" -qtAc 'SELECT 1' >/dev/null 2>&1; then
  log "creating the pupmatch_test role"
  $SUDO runuser -u postgres -- psql -qc \
    "DO \$\$ BEGIN
       IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pupmatch_test') THEN
         CREATE ROLE pupmatch_test LOGIN SUPERUSER PASSWORD 'pupmatch_test';
       END IF;
     END \$\$;"
fi
# Leftovers of interrupted runs: test databases and outdated templates.
psql "$TEST_PG_URL" -qtAc \
  "SELECT datname FROM pg_database WHERE datname LIKE 'pupmatch\_test\_%' OR datname LIKE 'pupmatch\_tpl\_%'" |
  while read -r db; do
    [ -n "$db" ] && psql "$TEST_PG_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
  done

# 3. Redis ------------------------------------------------------------------------------------
if ! redis-cli -u "$TEST_REDIS_URL" ping >/dev/null 2>&1; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/pupmatch-test-redis.log
  for _ in $(seq 1 40); do redis-cli -u "$TEST_REDIS_URL" ping >/dev/null 2>&1 && break; sleep 0.25; done
  redis-cli -u "$TEST_REDIS_URL" ping >/dev/null
fi

# 4. PostgreSQL and Redis over TLS only -------------------------------------------------------
# The CA and the server certificate (valid for the name `localhost` only, so connecting to
# 127.0.0.1 with host-name verification must fail) are made here, with a second, unrelated CA
# for the "wrong CA" tests. They are remade when missing or about to expire.
tls_renewed=0
if ! openssl x509 -checkend 86400 -noout -in "$TEST_TLS_DIR/server.pem" >/dev/null 2>&1; then
  log "making a throwaway CA and server certificate in $TEST_TLS_DIR"
  mkdir -p "$TEST_TLS_DIR"
  (
    cd "$TEST_TLS_DIR"
    for ca in ca other-ca; do
      openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=PupMatch test $ca" \
        -keyout "$ca.key" -out "$ca.pem" 2>/dev/null
    done
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
      -extfile server.ext -out server.pem 2>/dev/null
    rm -f server.csr server.ext
  )
  tls_renewed=1
fi
tls_conf="/etc/postgresql/$PG_VERSION/$TLS_CLUSTER"
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$PG_VERSION $TLS_CLUSTER$"; then
  log "creating the TLS-only PostgreSQL cluster on port $TEST_TLS_PG_PORT"
  $SUDO pg_createcluster "$PG_VERSION" "$TLS_CLUSTER" -p "$TEST_TLS_PG_PORT" >/dev/null
  tls_renewed=1
fi
if [ "$tls_renewed" = 1 ] || ! $SUDO cmp -s "$TEST_TLS_DIR/server.pem" "$tls_conf/server.pem"; then
  $SUDO install -o postgres -g postgres -m 0644 "$TEST_TLS_DIR/server.pem" "$tls_conf/server.pem"
  $SUDO install -o postgres -g postgres -m 0600 "$TEST_TLS_DIR/server.key" "$tls_conf/server.key"
  $SUDO tee "$tls_conf/conf.d/pupmatch-tls.conf" >/dev/null <<EOF
listen_addresses = 'localhost'
ssl = on
ssl_cert_file = '$tls_conf/server.pem'
ssl_key_file = '$tls_conf/server.key'
fsync = off
EOF
  # Encrypted connections only: every unencrypted one is refused.
  $SUDO tee "$tls_conf/pg_hba.conf" >/dev/null <<EOF
local     all all                peer
hostssl   all all 127.0.0.1/32   trust
hostssl   all all ::1/128        trust
hostnossl all all 0.0.0.0/0      reject
hostnossl all all ::/0           reject
EOF
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$TLS_CLUSTER" stop >/dev/null 2>&1 || true
fi
if ! pg_isready -q -h localhost -p "$TEST_TLS_PG_PORT"; then
  log "starting the TLS-only PostgreSQL cluster"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$TLS_CLUSTER" start
  for _ in $(seq 1 60); do pg_isready -q -h localhost -p "$TEST_TLS_PG_PORT" && break; sleep 0.5; done
  pg_isready -h localhost -p "$TEST_TLS_PG_PORT"
fi
tls_pg="postgres://postgres@localhost:$TEST_TLS_PG_PORT/postgres?sslmode=verify-full&sslrootcert=$TEST_TLS_DIR/ca.pem"
psql "$tls_pg" -qtAc "SELECT datname FROM pg_database WHERE datname LIKE 'pupmatch\_test\_%'" |
  while read -r db; do
    [ -n "$db" ] && psql "$tls_pg" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
  done

tls_redis=(redis-cli -h localhost -p "$TEST_TLS_REDIS_PORT" --tls --cacert "$TEST_TLS_DIR/ca.pem")
if [ "$tls_renewed" = 1 ]; then
  "${tls_redis[@]}" shutdown nosave >/dev/null 2>&1 || true
fi
if ! "${tls_redis[@]}" ping >/dev/null 2>&1; then
  log "starting Redis with TLS only on port $TEST_TLS_REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 ::1 --port 0 --tls-port "$TEST_TLS_REDIS_PORT" \
    --tls-cert-file "$TEST_TLS_DIR/server.pem" --tls-key-file "$TEST_TLS_DIR/server.key" \
    --tls-ca-cert-file "$TEST_TLS_DIR/ca.pem" --tls-auth-clients no \
    --save "" --appendonly no --dir /tmp --logfile /tmp/pupmatch-test-redis-tls.log \
    --pidfile /tmp/pupmatch-test-redis-tls.pid
  for _ in $(seq 1 40); do "${tls_redis[@]}" ping >/dev/null 2>&1 && break; sleep 0.25; done
  "${tls_redis[@]}" ping >/dev/null
fi

# 4b. A primary and its streaming replica ----------------------------------------------------
# The replica is a `pg_basebackup -R` copy of the primary, streaming from a replication slot
# (so a replica stopped for a while finds the WAL it missed). Remade when it is not a standby.
cluster_exists() { pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$PG_VERSION $1$"; }
start_cluster() {
  local name=$1 port=$2
  if ! pg_isready -q -h 127.0.0.1 -p "$port"; then
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$name" start
    for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p "$port" && break; sleep 0.5; done
    pg_isready -h 127.0.0.1 -p "$port"
  fi
}
primary_pg="postgres://postgres@127.0.0.1:$TEST_PRIMARY_PG_PORT/postgres"
replica_pg="postgres://postgres@127.0.0.1:$TEST_REPLICA_PG_PORT/postgres"
if ! cluster_exists "$PRIMARY_CLUSTER"; then
  log "creating the primary PostgreSQL cluster on port $TEST_PRIMARY_PG_PORT"
  $SUDO pg_createcluster "$PG_VERSION" "$PRIMARY_CLUSTER" -p "$TEST_PRIMARY_PG_PORT" >/dev/null
  $SUDO tee "/etc/postgresql/$PG_VERSION/$PRIMARY_CLUSTER/conf.d/pupmatch.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
fsync = off
max_connections = 300
wal_level = replica
max_wal_senders = 5
max_replication_slots = 5
EOF
  $SUDO tee "/etc/postgresql/$PG_VERSION/$PRIMARY_CLUSTER/pg_hba.conf" >/dev/null <<EOF
local all         all              trust
host  all         all 127.0.0.1/32 trust
host  replication all 127.0.0.1/32 trust
EOF
fi
start_cluster "$PRIMARY_CLUSTER" "$TEST_PRIMARY_PG_PORT"
if ! cluster_exists "$REPLICA_CLUSTER" ||
  [ "$(psql "$replica_pg" -qtAc 'SELECT pg_is_in_recovery()' 2>/dev/null)" != t ]; then
  log "making a streaming replica of it on port $TEST_REPLICA_PG_PORT (pg_basebackup)"
  if cluster_exists "$REPLICA_CLUSTER"; then
    $SUDO pg_dropcluster --stop "$PG_VERSION" "$REPLICA_CLUSTER"
  fi
  psql "$primary_pg" -qtAc \
    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'pupmatch_replica'" >/dev/null
  $SUDO pg_createcluster "$PG_VERSION" "$REPLICA_CLUSTER" -p "$TEST_REPLICA_PG_PORT" >/dev/null
  $SUDO tee "/etc/postgresql/$PG_VERSION/$REPLICA_CLUSTER/conf.d/pupmatch.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
fsync = off
max_connections = 300
hot_standby = on
hot_standby_feedback = on
EOF
  $SUDO cp "/etc/postgresql/$PG_VERSION/$PRIMARY_CLUSTER/pg_hba.conf" \
    "/etc/postgresql/$PG_VERSION/$REPLICA_CLUSTER/pg_hba.conf"
  replica_data="$(pg_lsclusters -h | awk -v v="$PG_VERSION" -v n="$REPLICA_CLUSTER" '$1==v && $2==n {print $6}')"
  $SUDO rm -rf "$replica_data"
  $SUDO install -d -o postgres -g postgres -m 0700 "$replica_data"
  $SUDO runuser -u postgres -- pg_basebackup -h 127.0.0.1 -p "$TEST_PRIMARY_PG_PORT" -U postgres \
    -D "$replica_data" -R -X stream -C -S pupmatch_replica
fi
start_cluster "$REPLICA_CLUSTER" "$TEST_REPLICA_PG_PORT"
# A replica left paused by an interrupted run replays again.
psql "$replica_pg" -qtAc "SELECT pg_wal_replay_resume()" >/dev/null 2>&1 || true
psql "$primary_pg" -qtAc "SELECT datname FROM pg_database WHERE datname LIKE 'pupmatch\_test\_%'" |
  while read -r db; do
    [ -n "$db" ] && psql "$primary_pg" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
  done
export TEST_PRIMARY_PG_URL="$primary_pg" TEST_REPLICA_PG_URL="$replica_pg"

# 5. An S3-compatible server (moto's server mode, from PyPI) ---------------------------------
if ! curl -fsS "$TEST_S3_ENDPOINT/moto-api/" >/dev/null 2>&1; then
  if [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
    log "installing moto (S3-compatible test server) into $MOTO_VENV"
    python3 -m venv "$MOTO_VENV"
    "$MOTO_VENV/bin/pip" install -q 'moto[server]'
  fi
  log "starting moto on $TEST_S3_ENDPOINT"
  port="${TEST_S3_ENDPOINT##*:}"
  nohup "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >/tmp/pupmatch-test-moto.log 2>&1 &
  for _ in $(seq 1 80); do curl -fsS "$TEST_S3_ENDPOINT/moto-api/" >/dev/null 2>&1 && break; sleep 0.25; done
  curl -fsS "$TEST_S3_ENDPOINT/moto-api/" >/dev/null
fi

# 5b. The real GraphQL clients (npm registry), as locked in tests/clients/package-lock.json ---
if ! cmp -s tests/clients/package-lock.json tests/clients/node_modules/.installed-lock 2>/dev/null; then
  log "installing the Node.js test clients (npm ci)"
  npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error >/dev/null
  cp tests/clients/package-lock.json tests/clients/node_modules/.installed-lock
fi

[ "${SERVICES_ONLY:-0}" = 1 ] && exit 0

# 6. The suite --------------------------------------------------------------------------------
status=0
log "checking that no two modules of src/ import each other"
python3 scripts/check-imports.py || status=1
log "checking the alert rules and running their unit tests (promtool)"
promtool check rules deploy/prometheus/alerts.yml >/dev/null || status=1
promtool test rules deploy/prometheus/alerts_test.yml || status=1
# The API contract the mobile app is written against: next to this checkout, or next to the
# repository it was cloned from. The contract test compares docs/api/ with it.
if [ -z "${TEST_CONTRACT_DIR:-}" ]; then
  origin="$(git config --get remote.origin.url 2>/dev/null || true)"
  for dir in ../shared/api "${origin%/}/../shared/api"; do
    if [ -f "$dir/schema.graphql" ]; then
      TEST_CONTRACT_DIR="$(cd "$dir" && pwd)"
      break
    fi
  done
fi
if [ -n "${TEST_CONTRACT_DIR:-}" ]; then
  export TEST_CONTRACT_DIR
  log "API contract: $TEST_CONTRACT_DIR"
else
  export TEST_CONTRACT_DIR=absent
  log "API contract: not found next to this checkout; docs/api/ is checked against the served schema only"
fi
# TEST_RUNNER=cargo runs the suite with plain `cargo test` (one process for every test), as a
# machine without cargo-nextest would.
runner="${TEST_RUNNER:-nextest}"
if [ "$runner" = nextest ] && ! cargo nextest --version >/dev/null 2>&1; then
  # nextest runs each test in a process of its own, and in the groups .config/nextest.toml
  # sets; `cargo test` below is the fallback when it cannot be had.
  log "installing cargo-nextest (built from crates.io, once: a few minutes)"
  cargo install --locked --quiet cargo-nextest || log "cargo-nextest could not be installed: using cargo test"
fi
log "running the test suite (PostgreSQL + Redis, and SQLite)"
if [ "$runner" = nextest ] && cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@" || status=$?
else
  cargo test --no-fail-fast -- "$@" || status=$?
fi

# 7. Fuzzing the whole GraphQL schema (Schemathesis, from PyPI), on both backends -------------
if [ $# -eq 0 ]; then
  cargo build -q --bin pupmatch
  log "fuzzing the GraphQL schema: SQLite"
  scripts/fuzz-graphql.sh target/debug/pupmatch || status=1
  fuzzdb="pupmatch_test_fuzz_$$"
  psql "$TEST_PG_URL" -qc "CREATE DATABASE $fuzzdb"
  log "fuzzing the GraphQL schema: PostgreSQL + Redis"
  scripts/fuzz-graphql.sh target/debug/pupmatch "${TEST_PG_URL%/*}/$fuzzdb" "$TEST_REDIS_URL" || status=1
  psql "$TEST_PG_URL" -qc "DROP DATABASE IF EXISTS $fuzzdb WITH (FORCE)" || true

  # 8. The fleet under load while its parts fail: a 90-second soak (the debug build the suite
  #    already made; scripts/soak.sh alone runs a release build for 10 minutes).
  log "soak: the fleet under load with faults, 90 s"
  PROFILE=dev scripts/soak.sh --duration 90 --people 40 || status=1
fi
exit "$status"
