#!/usr/bin/env bash
# A/B of two server binaries on one database: the same people, one scenario, alternating the
# binaries ROUNDS times (8 s warm-up, 15 s measured each), with the server's and PostgreSQL's CPU
# per run, the order within a pair alternating. For changes whose effect is smaller than the
# machine's drift between two runs of scripts/bench-load.sh.
#
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY [SCENARIO [USERS]]   # recommendations, 2000
#   BACKEND=sqlite scripts/bench-ab.sh OLD NEW like                 # embedded mode (one file)
#
# SCENARIO is one of benches/load/scenarios.lua's (recommendations is measured with every list
# cached: each binary's lists are computed in an unmeasured run first). ROUNDS (3), CONNS (32),
# PIN (0; 1 pins the server and wrk to a core each). OLD_ENV and NEW_ENV add settings
# (`VAR=value …`) to one side only, to compare one binary with itself under two settings:
#
#   NEW_ENV="OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_TRACES_SAMPLER_ARG=0.01" \
#     scripts/bench-ab.sh target/release/pupmatch target/release/pupmatch me Needs what scripts/test.sh starts
# (PostgreSQL, Redis) and what scripts/bench-load.sh installs (wrk, the load client).
set -euo pipefail
cd "$(dirname "$0")/.."
OLD="$1"; NEW="$2"; SCENARIO="${3:-recommendations}"; USERS="${4:-2000}"
ROUNDS="${ROUNDS:-3}"; CONNS="${CONNS:-32}"
# PIN=1: the server on the first core, wrk on the second (PostgreSQL and Redis float): less
# drift between runs, at the price of a one-core server.
SERVER_PIN=""; WRK_PIN=""
if [ "${PIN:-0}" = 1 ]; then SERVER_PIN="taskset -c 0"; WRK_PIN="taskset -c 1"; fi
PG_ADMIN="${TEST_PG_URL:-postgres://pupmatch_test:pupmatch_test@127.0.0.1:5432/postgres}"
VENV="${BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pupmatch-bench}"
OUT="$(mktemp -d /tmp/pupmatch-ab.XXXXXX)"
db="pupmatch_ab_$$"
PORT="${PORT:-18081}"; BASE="http://127.0.0.1:$PORT"
export PUPMATCH_LISTEN="127.0.0.1:$PORT" PUPMATCH_LOG=warn PUPMATCH_JOBS_IN_SERVE=false
BACKEND="${BACKEND:-postgres}"
export PUPMATCH_MEDIA_DIR="$OUT/media" PUPMATCH_DATABASE_URL="${PG_ADMIN%/*}/$db"
case "$BACKEND" in
  postgres) ;;
  sqlite) PUPMATCH_DATABASE_URL="sqlite://$OUT/pupmatch.db" ;;
  *) echo "BACKEND: postgres or sqlite" >&2; exit 2 ;;
esac
[ "$BACKEND" = postgres ] && export PUPMATCH_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
for limit in USER IP AUTH LOCATION MESSAGE PEOPLE; do export "PUPMATCH_RATE_LIMIT_${limit}_PER_MIN=100000000"; done
for limit in PROFILES LIKES FIRST_MESSAGES LOCATION_CHANGES; do export "PUPMATCH_RATE_LIMIT_${limit}_PER_DAY=100000000"; done
server=""
start() { # binary, name (each binary caches under its own Redis prefix)
  local extra=""
  [ "$2" = old ] && extra="${OLD_ENV:-}"
  [ "$2" = new ] && extra="${NEW_ENV:-}"
  # shellcheck disable=SC2086 # OLD_ENV / NEW_ENV are lists of VAR=value
  env $extra PUPMATCH_REDIS_PREFIX="ab:$$:$2:" $SERVER_PIN "$1" serve >>"$OUT/server-$2.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
}
stop() { kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true; server=""; }
cleanup() {
  stop
  [ "$BACKEND" = postgres ] && psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  true
}
trap cleanup EXIT
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
db_ticks() { # PostgreSQL's processes; SQLite runs inside the server
  local t=0 pid
  [ "$BACKEND" = postgres ] || { echo 0; return; }
  for pid in $(pgrep -x postgres || true); do t=$((t + $(ticks "$pid"))); done; echo "$t"; }

[ "$BACKEND" = postgres ] && psql "$PG_ADMIN" -qc "CREATE DATABASE $db"
start "$NEW" new
"$VENV/bin/python" benches/load/populate.py "$BASE" "$USERS" --out "$OUT/tokens.json" | tail -1
# A profile answers only people it was shown to (the `profile` scenario reads random pairs).
if [ "$BACKEND" = postgres ]; then
  benches/load/introduce_all.sh postgres "$PUPMATCH_DATABASE_URL"
else
  benches/load/introduce_all.sh sqlite "$OUT/pupmatch.db" "$VENV/bin/python"
fi
stop
[ "$BACKEND" = postgres ] && psql "$PUPMATCH_DATABASE_URL" -qc "VACUUM ANALYZE"
"$VENV/bin/python" -c 'import json,sys; [print(u["id"], u["token"]) for u in json.load(open(sys.argv[1]))]' \
  "$OUT/tokens.json" >"$OUT/tokens.txt"
hz=$(getconf CLK_TCK)
# Each binary fills its own Redis prefix once, unmeasured: the lists a scenario reads are
# computed here, not in the first measured round.
for which in old new; do
  bin="$OLD"; [ "$which" = new ] && bin="$NEW"
  start "$bin" "$which"
  $WRK_PIN wrk -t2 -c "$CONNS" -d20s -s benches/load/scenarios.lua "$BASE" -- "$SCENARIO" "$OUT/tokens.txt" >/dev/null
  stop
done
for round in $(seq 1 "$ROUNDS"); do
  # Odd rounds run the old binary first, even rounds the new one: a scenario that writes (like)
  # grows the database run by run, and the later run of a pair would always pay for it.
  order="old new"; [ $((round % 2)) = 0 ] && order="new old"
  for which in $order; do
    bin="$OLD"; [ "$which" = new ] && bin="$NEW"
    start "$bin" "$which"
    $WRK_PIN wrk -t2 -c "$CONNS" -d8s -s benches/load/scenarios.lua "$BASE" -- "$SCENARIO" "$OUT/tokens.txt" >/dev/null
    s0=$(ticks "$server"); d0=$(db_ticks)
    $WRK_PIN wrk --latency -t2 -c "$CONNS" -d15s -s benches/load/scenarios.lua "$BASE" -- "$SCENARIO" "$OUT/tokens.txt" \
      >"$OUT/$which-$round.txt"
    s1=$(ticks "$server"); d1=$(db_ticks)
    rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/$which-$round.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$OUT/$which-$round.txt")
    printf 'round %s %-3s %10s req/s  p99 %-9s server %5.2f cores  database %5.2f cores\n' "$round" "$which" \
      "$rps" "$p99" "$(awk -v t=$((s1 - s0)) -v hz="$hz" 'BEGIN { print t / hz / 15 }')" \
      "$(awk -v t=$((d1 - d0)) -v hz="$hz" 'BEGIN { print t / hz / 15 }')"
    stop
  done
done
