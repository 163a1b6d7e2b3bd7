#!/usr/bin/env bash
# A soak and chaos run of the whole fleet on this machine, under load, with faults on a schedule.
#
#   scripts/soak.sh [--duration SECONDS] [--people N] [--rate ACTIONS_PER_SECOND_EACH]
#                   [--report FILE] [--skip-fault api|redis|replica|primary|worker]…
#                                                         # defaults: 600 s, 60 people, 1/s
#
# The fleet: nginx in front of 3 `pupmatch serve` instances and 2 `pupmatch worker`s, on a
# PostgreSQL primary with a streaming replica (the test clusters, ports 5434/5435), a Redis of
# its own (port 6391, so restarting it disturbs nothing else) and the test S3 server (moto). The
# services are installed and started as scripts/test.sh does it.
#
# The load: benches/soak.rs, people who sign up, build a complete profile with photos, set a
# location, page through recommendations, like and pass, chat over /ws with a clientId on
# every message, and drop their connection now and then and resync.
#
# The faults, at fixed shares of the run: kill -9 an API instance (started again 3 s later),
# restart Redis, stop the replica for 30 s (a fifth of the run when shorter), fast-restart the
# primary, kill -9 a worker (started again 3 s later).
#
# At the end the load generator judges the run (what people saw, and the database) and prints
# the report; the script exits non-zero when an invariant broke. Everything it starts is
# stopped on exit, and its database dropped (KEEP=1 keeps the database and the logs).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=600 PEOPLE=60 RATE=1 REPORT="" SKIP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --people) PEOPLE="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --report) REPORT="$2"; shift 2 ;;
    --skip-fault) SKIP="$SKIP $2"; shift 2 ;;   # api, redis, replica, primary or worker
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
PG_VERSION=15
PRIMARY_PORT="${TEST_PRIMARY_PG_PORT:-5434}"
PRIMARY="postgres://postgres@127.0.0.1:$PRIMARY_PORT/postgres"
REPLICA="postgres://postgres@127.0.0.1:${TEST_REPLICA_PG_PORT:-5435}/postgres"
S3="${TEST_S3_ENDPOINT:-http://127.0.0.1:9100}"
REDIS_PORT="${SOAK_REDIS_PORT:-6391}"
FRONT_PORT="${SOAK_PORT:-18180}"
API_PORTS=(18181 18182 18183)
WORKER_PORTS=(18191 18192)   # a worker serves /healthz, /readyz and /metrics
JOB_EVERY=5
OUT="$(mktemp -d /tmp/pupmatch-soak.XXXXXX)"
log() { printf '==> [%s] %s\n' "$(date +%T)" "$*"; }
now_ms() { date +%s%3N; }

log "services (as scripts/test.sh starts them)"
SERVICES_ONLY=1 scripts/test.sh >"$OUT/services.log" 2>&1 || { cat "$OUT/services.log"; exit 1; }
# PROFILE=dev runs the debug build (what the test suite already built) instead of a release
# one, and then reports latency without judging it.
PROFILE="${PROFILE:-release}"
log "building the server and the load generator ($PROFILE)"
cargo build -q --profile "$PROFILE" --bin pupmatch
dir=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
generator=$(cargo bench --profile "$PROFILE" --bench soak --no-run 2>&1 |
  grep -o "target/$dir/deps/soak-[0-9a-f]*" | tail -1)
[ -x "$generator" ] || { echo "the load generator did not build" >&2; exit 1; }
BIN="target/$dir/pupmatch"

db="pupmatch_soak_$$"
bucket="pupmatch-soak-$$"
pids=()
cleanup() {
  set +e
  for pid in "${pids[@]}" $(cat "$OUT"/*.pid 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1
  [ -f "$OUT/nginx/nginx.pid" ] && /usr/sbin/nginx -p "$OUT/nginx" -c "$OUT/nginx.conf" -s stop 2>/dev/null
  # The replica is running again whatever happened.
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" pupmatch_replica start >/dev/null 2>&1
  if [ "${KEEP:-0}" != 1 ]; then
    psql "$PRIMARY" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    rm -rf "$OUT"
  else
    echo "kept: database $db, logs in $OUT"
  fi
}
trap cleanup EXIT

start_redis() {
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$OUT" --logfile "$OUT/redis.log" --pidfile "$OUT/redis.pid"
  for _ in $(seq 1 40); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 0.1; done
}
start_redis
psql "$PRIMARY" -qc "CREATE DATABASE $db"
curl -fsS -X PUT "$S3/$bucket" >/dev/null

export PUPMATCH_ENV=development PUPMATCH_LOG=warn
export PUPMATCH_DATABASE_URL="${PRIMARY%/*}/$db"
export PUPMATCH_DATABASE_REPLICA_URLS="${REPLICA%/*}/$db"
export PUPMATCH_DATABASE_MAX_CONNECTIONS=8
export PUPMATCH_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" PUPMATCH_REDIS_PREFIX="soak:$$:"
export PUPMATCH_S3_BUCKET="$bucket" PUPMATCH_S3_ENDPOINT="$S3" PUPMATCH_S3_REGION=us-east-1
export PUPMATCH_S3_ACCESS_KEY_ID=testing PUPMATCH_S3_SECRET_ACCESS_KEY=testing
export PUPMATCH_JWT_SECRET="soak-secret-0123456789abcdefghijklmnopqrstuvwxyz"
export PUPMATCH_PUBLIC_URL="http://127.0.0.1:$FRONT_PORT"
export PUPMATCH_TRUSTED_PROXIES=127.0.0.1/32 PUPMATCH_JOBS_IN_SERVE=false
export PUPMATCH_JOBS_REFRESH_EVERY_SECS=$JOB_EVERY PUPMATCH_JOBS_DELIVER_EVERY_SECS=$JOB_EVERY
export PUPMATCH_JOBS_CLEANUP_EVERY_SECS=$JOB_EVERY
for limit in USER IP AUTH LOCATION MESSAGE PEOPLE; do export "PUPMATCH_RATE_LIMIT_${limit}_PER_MIN=1000000"; done
for limit in PROFILES LIKES FIRST_MESSAGES LOCATION_CHANGES; do export "PUPMATCH_RATE_LIMIT_${limit}_PER_DAY=1000000"; done
"$BIN" migrate >"$OUT/migrate.log" 2>&1

# start_api N: `serve` number N (1-3) on its port; start_worker N: `worker` number N (1-2).
start_api() {
  PUPMATCH_LISTEN="127.0.0.1:${API_PORTS[$1-1]}" "$BIN" serve >>"$OUT/api$1.log" 2>&1 &
  echo $! >"$OUT/api$1.pid"
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:${API_PORTS[$1-1]}/readyz" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "api$1 did not become ready" >&2
}
start_worker() {
  PUPMATCH_LISTEN="127.0.0.1:${WORKER_PORTS[$1-1]}" "$BIN" worker >>"$OUT/worker$1.log" 2>&1 &
  echo $! >"$OUT/worker$1.pid"
}
for n in 1 2 3; do start_api "$n"; done
for n in 1 2; do start_worker "$n"; done

nginx_user=""
[ "$(id -u)" = 0 ] && nginx_user="user root;"
mkdir -p "$OUT/nginx"
cat >"$OUT/nginx.conf" <<EOF
$nginx_user
worker_processes 1;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $OUT/nginx/body;
  proxy_temp_path $OUT/nginx/proxy;
  fastcgi_temp_path $OUT/nginx/fastcgi;
  uwsgi_temp_path $OUT/nginx/uwsgi;
  scgi_temp_path $OUT/nginx/scgi;
  client_max_body_size 11m;
  upstream api {
    server 127.0.0.1:${API_PORTS[0]} max_fails=1 fail_timeout=2s;
    server 127.0.0.1:${API_PORTS[1]} max_fails=1 fail_timeout=2s;
    server 127.0.0.1:${API_PORTS[2]} max_fails=1 fail_timeout=2s;
    keepalive 32;
  }
  server {
    listen 127.0.0.1:$FRONT_PORT;
    location / {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$http_connection;
      proxy_connect_timeout 1s;
      proxy_read_timeout 60s;
      # An instance that refuses the connection: the next one (nothing was sent yet).
      proxy_next_upstream error timeout;
      # One that went away mid-request: the client retries, as after any 503.
      error_page 502 504 = @unavailable;
    }
    location @unavailable {
      default_type application/json;
      add_header Retry-After 1 always;
      return 503 '{"errors":[{"message":"an instance went away; retry","extensions":{"code":"SERVICE_UNAVAILABLE"}}]}';
    }
  }
}
EOF
/usr/sbin/nginx -p "$OUT/nginx" -c "$OUT/nginx.conf"

# Memory of every serve and worker process, every 2 s.
(
  while true; do
    for name in api1 api2 api3 worker1 worker2; do
      pid=$(cat "$OUT/$name.pid" 2>/dev/null) || continue
      kib=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null) || continue
      [ -n "$kib" ] && printf '%s\t%s\t%s\t%s\n' "$name" "$pid" "$(now_ms)" "$kib" >>"$OUT/memory.tsv"
    done
    sleep 2
  done
) &
pids+=($!)

log "load: $PEOPLE people for $DURATION s"
# A debug build is many times slower than a release one: its latency is reported, not judged.
latency_goal=100
[ "$PROFILE" = dev ] && latency_goal=0
"$generator" --base "http://127.0.0.1:$FRONT_PORT" --database "$PUPMATCH_DATABASE_URL" \
  --latency-goal-ms "$latency_goal" \
  --duration "$DURATION" --people "$PEOPLE" --rate "$RATE" --job-every "$JOB_EVERY" \
  --faults "$OUT/faults.tsv" --memory "$OUT/memory.tsv" --report "$OUT/report.md" \
  >"$OUT/generator.out" 2>"$OUT/generator.log" &
load=$!
pids+=($load)
# The load's clock starts once everyone has signed up.
for _ in $(seq 1 600); do grep -q "live for" "$OUT/generator.log" 2>/dev/null && break; sleep 0.2; done
t0=$(date +%s%3N)

# fault NAME START_SHARE COMMANDS…: at START_SHARE of the run, runs the commands (which return
# once the fault is repaired) and logs the window.
at_share() {
  local wait_ms=$(awk -v d="$DURATION" -v s="$1" -v t0="$t0" -v now="$(now_ms)" \
    'BEGIN { w = t0 + d * s * 1000 - now; print (w > 0 ? int(w) : 0) }')
  sleep "$(awk -v w="$wait_ms" 'BEGIN { printf "%.3f", w / 1000 }')"
}
fault() {
  local key=$1 name=$2 share=$3
  shift 3
  case " $SKIP " in *" $key "*) log "fault skipped: $name"; return ;; esac
  at_share "$share"
  local start
  start=$(now_ms)
  log "fault: $name"
  "$@"
  printf '%s\t%s\t%s\n' "$name" "$start" "$(now_ms)" >>"$OUT/faults.tsv"
}
kill_api() {
  kill -9 "$(cat "$OUT/api2.pid")" || true
  sleep 3
  start_api 2
}
restart_redis() {
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  sleep 1
  start_redis
}
replica_for() {
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" pupmatch_replica stop -m fast
  sleep "$1"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" pupmatch_replica start
}
restart_primary() {
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" pupmatch_primary restart -m fast
}
kill_worker() {
  kill -9 "$(cat "$OUT/worker1.pid")" || true
  sleep 3
  start_worker 1
}
replica_secs=$(awk -v d="$DURATION" 'BEGIN { s = d / 5; print (s < 30 ? int(s) : 30) }')
fault api "API instance killed (kill -9) and replaced" 0.12 kill_api
fault redis "Redis restarted" 0.25 restart_redis
fault replica "replica stopped for ${replica_secs} s" 0.38 replica_for "$replica_secs"
fault primary "primary fast-restarted" 0.72 restart_primary
fault worker "worker killed (kill -9) and replaced" 0.85 kill_worker

status=0
wait "$load" || status=$?
cat "$OUT/generator.out"
# Every process of the fleet is still up (none died on its own along the way).
for name in api1 api2 api3 worker1 worker2; do
  if ! kill -0 "$(cat "$OUT/$name.pid")" 2>/dev/null; then
    echo "BROKEN: $name is not running; its log ends with:" >&2
    grep -v '^ ' "$OUT/$name.log" | tail -5 >&2
    status=1
  fi
done
[ -n "$REPORT" ] && cp "$OUT/report.md" "$REPORT"
if [ "$status" != 0 ]; then
  echo "the soak broke an invariant (exit $status); the generator's log:" >&2
  tail -20 "$OUT/generator.log" >&2
  KEEP=1
fi
exit "$status"
