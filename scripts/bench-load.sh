#!/usr/bin/env bash
# Load benchmark: the release server under N concurrent clients, four scenarios, with this
# machine's floor measured in the same run.
#
#   scripts/bench-load.sh [postgres|sqlite] [USERS]        # defaults: postgres 2000
#
# It builds the release binary, starts it on a fresh database (PostgreSQL + Redis as
# scripts/test.sh sets them up, or SQLite) with rate limits lifted, creates USERS people through
# the public API (benches/load/populate.py: register, profile, two photos, prompts, location,
# preferences), then runs wrk (-t2 -c32, 3 s warm-up, 15 s each; THREADS, CONNS, DURATION,
# WARMUP override) on:
#   floor            GET /healthz, and POST { promptQuestions } (GraphQL touching no data)
#   me               { me { id email } }
#   profile          another person's profile with photos and prompts
#   recommendations  recommendations(first: 20) with profile, photos, score, distance; each
#                    person's first request computes their list
#   recommendations-cached  the same again, every list now cached
#   like             like(userId) of a random person (mutates: runs last)
# and prints req/s and p50/p90/p99 per scenario, the CPU each process used, the server's context
# switches per request, and the server's peak memory.
# PROFILE=1 also records `perf` profiles of the server per scenario (perf from Debian);
# PROFILE=system records the whole machine instead (PostgreSQL, Redis and wrk too; e.g.
# `perf report -i OUT/like.perf --comm postgres`);
# PERF_ARGS replaces perf's sampling options (default -F 999; call graphs of a release build
# need e.g. PERF_ARGS="-F 499 --call-graph dwarf,8192").
# SEED=1 makes the USERS people with `pupmatch seed` instead (demo profiles in six cities, for
# large counts) and signs in 2 000 of them (SIGN_IN overrides) as the load's clients.
# KEEP_DB=1 keeps the PostgreSQL database afterwards (its name is printed), for EXPLAIN.
# SCENARIOS="recommendations recommendations-cached" runs only those after the floor.
# BIN=path runs that server binary instead of building one (to measure an older build).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${1:-postgres}"
USERS="${2:-2000}"
THREADS="${THREADS:-2}"; CONNS="${CONNS:-32}"; DURATION="${DURATION:-15s}"; WARMUP="${WARMUP:-3s}"
PORT="${PORT:-18080}"
BASE="http://127.0.0.1:$PORT"
OUT="${OUT_DIR:-$(mktemp -d /tmp/pupmatch-bench.XXXXXX)}"
mkdir -p "$OUT"
PG_ADMIN="${TEST_PG_URL:-postgres://pupmatch_test:pupmatch_test@127.0.0.1:5432/postgres}"
REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
VENV="${BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pupmatch-bench}"
log() { printf '==> %s\n' "$*"; }

command -v wrk >/dev/null 2>&1 || { log "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
if [ ! -x "$VENV/bin/python" ]; then
  log "installing the load client (httpx, pillow) into $VENV"
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q httpx pillow
fi
if [ -z "${BIN:-}" ]; then
  log "building the release server"
  cargo build -q --release --bin pupmatch
  BIN=target/release/pupmatch
fi

db="pupmatch_bench_$$"
export PUPMATCH_LISTEN="127.0.0.1:$PORT" PUPMATCH_LOG=warn PUPMATCH_JOBS_IN_SERVE=false
export PUPMATCH_MEDIA_DIR="$OUT/media"
for limit in USER IP AUTH LOCATION MESSAGE PEOPLE; do export "PUPMATCH_RATE_LIMIT_${limit}_PER_MIN=100000000"; done
for limit in PROFILES LIKES FIRST_MESSAGES LOCATION_CHANGES; do export "PUPMATCH_RATE_LIMIT_${limit}_PER_DAY=100000000"; done
case "$BACKEND" in
  postgres)
    psql "$PG_ADMIN" -qc "CREATE DATABASE $db"
    export PUPMATCH_DATABASE_URL="${PG_ADMIN%/*}/$db" PUPMATCH_REDIS_URL="$REDIS_URL"
    export PUPMATCH_REDIS_PREFIX="bench:$$:"
    ;;
  sqlite) export PUPMATCH_DATABASE_URL="sqlite://$OUT/pupmatch.db" ;;
  *) echo "backend: postgres or sqlite" >&2; exit 2 ;;
esac
cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  if [ "$BACKEND" = postgres ] && [ "${KEEP_DB:-0}" != 1 ]; then
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

"$BIN" serve >"$OUT/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$BASE/healthz" >/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
if [ "${SEED:-0}" = 1 ]; then
  log "seeding $USERS demo people"
  PUPMATCH_DATABASE_URL="$PUPMATCH_DATABASE_URL" "$BIN" seed --profiles "$USERS"
  "$VENV/bin/python" benches/load/sign_in_demo.py "$BASE" "$USERS" "${SIGN_IN:-2000}" --out "$OUT/tokens.json"
else
  log "creating $USERS people through the API"
  "$VENV/bin/python" benches/load/populate.py "$BASE" "$USERS" --out "$OUT/tokens.json" | tail -1
fi
# A profile answers only people it was shown to: the `profile` scenario reads random pairs, so
# everyone is introduced to everyone first (as if each had been served all the others).
if [ "$BACKEND" = postgres ]; then
  benches/load/introduce_all.sh postgres "${PG_ADMIN%/*}/$db"
else
  benches/load/introduce_all.sh sqlite "$OUT/pupmatch.db" "$VENV/bin/python"
fi
[ "$BACKEND" = postgres ] && psql "${PG_ADMIN%/*}/$db" -qc "VACUUM ANALYZE"
"$VENV/bin/python" - "$OUT/tokens.json" >"$OUT/tokens.txt" <<'PY'
import json, sys
for u in json.load(open(sys.argv[1])):
    print(u["id"], u["token"])
PY

# CPU time (clock ticks) used so far by the server, and by every PostgreSQL process.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
db_ticks() {
  local t=0 pid
  for pid in $(pgrep -x postgres || true); do t=$((t + $(ticks "$pid"))); done
  echo "$t"
}
redis_ticks() {
  local t=0 pid
  for pid in $(pgrep -x redis-server || true); do t=$((t + $(ticks "$pid"))); done
  echo "$t"
}
# Context switches of the server's threads so far (each one a thread that waited, or was made to).
switches() {
  cat /proc/"$server"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s + 0 }'
}
# Every core's busy time (user, nice, system, irq, softirq): what the whole machine spent.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
# PostgreSQL's per-table counters (scans, rows read, rows written); a scenario's difference is
# in OUT/NAME.tables (what its requests made the database do, to within a few).
table_stats() {
  [ "$BACKEND" = postgres ] || return 0
  psql "${PG_ADMIN%/*}/$db" -AtF ' ' -c "SELECT relname, seq_scan, seq_tup_read,
      coalesce(idx_scan, 0), coalesce(idx_tup_fetch, 0), n_tup_ins, n_tup_upd, n_tup_del,
      n_tup_hot_upd FROM pg_stat_user_tables ORDER BY relname" 2>/dev/null || true
}
run() { # name, then wrk arguments
  local name=$1; shift
  [ "$WARMUP" != 0 ] && wrk -t "$THREADS" -c "$CONNS" -d "$WARMUP" "$@" >/dev/null
  local perf_pid=""
  if [ "${PROFILE:-0}" != 0 ]; then
    local target=(-p "$server")
    [ "$PROFILE" = system ] && target=(-a)
    # shellcheck disable=SC2086 # PERF_ARGS is a list of options
    perf record ${PERF_ARGS:--F 999} "${target[@]}" -o "$OUT/$name.perf" -- sleep "${DURATION%s}" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  local s0 d0 r0 b0 c0
  table_stats >"$OUT/$name.tables0"
  s0=$(ticks "$server"); d0=$(db_ticks); r0=$(redis_ticks); b0=$(busy_ticks); c0=$(switches)
  wrk --latency -t "$THREADS" -c "$CONNS" -d "$DURATION" "$@" >"$OUT/$name.txt"
  echo "$(( $(ticks "$server") - s0 )) $(( $(db_ticks) - d0 )) $(( $(redis_ticks) - r0 ))" \
    "$(( $(busy_ticks) - b0 )) $(( $(switches) - c0 ))" >"$OUT/$name.cpu"
  [ -z "$perf_pid" ] || wait "$perf_pid" || true
  if [ "$BACKEND" = postgres ]; then
    # Backends report their counters when idle: most within a second, some held up to ten, so
    # a scenario's file may miss a few of its own or count a few of the scenario before.
    sleep 1
    table_stats >"$OUT/$name.tables1"
    awk 'NR == FNR { for (i = 2; i <= NF; i++) a[$1, i] = $i; next }
      { line = ""; any = 0
        for (i = 2; i <= NF; i++) { d = $i - a[$1, i]; line = line " " d; if (d) any = 1 }
        if (any) print $1 line }' "$OUT/$name.tables0" "$OUT/$name.tables1" |
      { echo "table seq_scan seq_tup_read idx_scan idx_tup_fetch ins upd del hot_upd"; cat; } \
      >"$OUT/$name.tables"
  fi
}
log "floor: /healthz and { promptQuestions }"
run healthz "$BASE/healthz"
printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' \
  "'{\"query\":\"{ promptQuestions }\"}'" >"$OUT/floor.lua"
run graphql-floor -s "$OUT/floor.lua" "$BASE/graphql"
SCENARIOS="${SCENARIOS:-me profile recommendations recommendations-cached like}"
for s in $SCENARIOS; do
  log "scenario: $s"
  # The second recommendations pass finds every list the first one computed in the cache.
  run "$s" -s benches/load/scenarios.lua "$BASE" -- "${s%-cached}" "$OUT/tokens.txt"
done

if [ "$BACKEND" = postgres ] && [[ " $SCENARIOS " == *" like "* ]]; then
  # The database's own ceiling for likes: the same transaction the server sends, from pgbench.
  log "PostgreSQL alone: the like transaction (pgbench)"
  dburl="${PG_ADMIN%/*}/$db"
  psql "$dburl" -qc "CREATE TABLE bench_people AS
      SELECT row_number() OVER (ORDER BY user_id) AS n, user_id FROM profiles;
    CREATE UNIQUE INDEX ON bench_people (n)"
  people=$(psql "$dburl" -tAc "SELECT count(*) FROM bench_people")
  pgbench -n -c "$CONNS" -j "$THREADS" -T "${DURATION%s}" -D people="$people" \
    -f benches/load/like.pgbench "$dburl" >"$OUT/like-database.txt" 2>&1 || true
  # Fewer at once (PostgreSQL does more likes a second with 4 than with 32), and in batches of 16
  # likes per transaction (what group commit would gain).
  pgbench -n -M prepared -c 4 -j "$THREADS" -T "${DURATION%s}" -D people="$people" \
    -f benches/load/like.pgbench "$dburl" >"$OUT/like-database-4.txt" 2>&1 || true
  psql "$dburl" -qf benches/load/like-batch.sql
  pgbench -n -M prepared --max-tries=5 -c 4 -j "$THREADS" -T "${DURATION%s}" -D people="$people" \
    -D n=16 -f benches/load/like-batch.pgbench "$dburl" >"$OUT/like-database-batch.txt" 2>&1 || true
fi

peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
echo
echo "PupMatch $BACKEND, $USERS people, wrk -t$THREADS -c$CONNS -d$DURATION, $(nproc) cores (raw output: $OUT)"
hz=$(getconf CLK_TCK); secs=${DURATION%s}
printf '%-23s %10s %9s %9s %9s %8s %11s %11s %11s %11s %9s\n' scenario "req/s" "p50 ms" "p90 ms" \
  "p99 ms" errors "server CPU" "database CPU" "Redis CPU" "machine CPU" "switches"
for name in healthz graphql-floor $SCENARIOS; do
  f="$OUT/$name.txt"
  rps=$(awk '/Requests\/sec/ {print $2}' "$f")
  p() { awk -v q="$1" '$1 == q {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.2f", v}' "$f"; }
  errs=$(awk '/^RESULT/ { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] ~ /errors/) e += kv[2] } } END { print e + 0 }' "$f")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$f")
  read -r sv dbv rv bv cs <"$OUT/$name.cpu"
  cores() { awk -v t="$1" -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.2f cores", t / hz / s }'; }
  # The server's context switches per request.
  per_request=$(awk -v c="${cs:-0}" -v r="$rps" -v s="$secs" 'BEGIN { printf "%.1f", (r > 0 ? c / (r * s) : 0) }')
  printf '%-23s %10s %9s %9s %9s %8s %11s %11s %11s %11s %9s\n' "$name" "$rps" "$(p 50%)" "$(p 90%)" \
    "$(p 99%)" "$((errs + ${non2xx:-0}))" "$(cores "$sv")" "$(cores "$dbv")" "$(cores "$rv")" \
    "$(cores "$bv")" "$per_request/req"
done
echo "server peak RSS: $((peak_kib / 1024)) MiB"
[ "${KEEP_DB:-0}" = 1 ] && [ "$BACKEND" = postgres ] && echo "database kept: ${PG_ADMIN%/*}/$db"
if [ -f "$OUT/like-database.txt" ]; then
  echo "PostgreSQL alone, the like transaction at $CONNS clients: $(awk '/^tps/ {printf "%.0f", $3}' "$OUT/like-database.txt") likes/s, $(awk '/latency average/ {print $4, $5}' "$OUT/like-database.txt") average"
  echo "PostgreSQL alone, at 4 clients: $(awk '/^tps/ {printf "%.0f", $3}' "$OUT/like-database-4.txt") likes/s; in transactions of 16 likes: $(awk '/^tps/ {printf "%.0f", $3 * 16}' "$OUT/like-database-batch.txt") likes/s"
fi
