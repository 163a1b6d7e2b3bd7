#!/usr/bin/env bash
# Fuzzes the whole GraphQL schema with Schemathesis (from PyPI) against a running server, as a
# signed-in person with a complete profile and a location, and fails on any 5xx, any INTERNAL
# error and any ERROR line in the server's log.
#
#   scripts/fuzz-graphql.sh BINARY [DATABASE_URL [REDIS_URL]]
#
# Without a database URL it uses a fresh SQLite file (embedded mode). FUZZ_EXAMPLES (25) sets the
# examples per operation; FUZZ_EXTRA passes more options to `st run`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$1"
DB="${2:-}"
REDIS="${3:-}"
VENV="${SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pupmatch-schemathesis}"
EXAMPLES="${FUZZ_EXAMPLES:-25}"

if [ ! -x "$VENV/bin/st" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'schemathesis>=4,<5'
fi

work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
env=(
  PUPMATCH_LISTEN="127.0.0.1:$port"
  PUPMATCH_DATABASE_URL="${DB:-sqlite://$work/pupmatch.db}"
  PUPMATCH_MEDIA_DIR="$work/media"
  PUPMATCH_LOG=warn
  PUPMATCH_RATE_LIMIT_USER_PER_MIN=1000000
  PUPMATCH_RATE_LIMIT_IP_PER_MIN=1000000
  PUPMATCH_RATE_LIMIT_AUTH_PER_MIN=1000000
  PUPMATCH_RATE_LIMIT_LOCATION_PER_MIN=1000000
  PUPMATCH_RATE_LIMIT_MESSAGE_PER_MIN=1000000
  PUPMATCH_RATE_LIMIT_PEOPLE_PER_MIN=1000000
  PUPMATCH_RATE_LIMIT_PROFILES_PER_DAY=1000000
  PUPMATCH_RATE_LIMIT_LIKES_PER_DAY=1000000
  PUPMATCH_RATE_LIMIT_FIRST_MESSAGES_PER_DAY=1000000
  PUPMATCH_RATE_LIMIT_LOCATION_CHANGES_PER_DAY=1000000
)
[ -n "$REDIS" ] && env+=(PUPMATCH_REDIS_URL="$REDIS" PUPMATCH_REDIS_PREFIX="fuzz:$port:")
env -i PATH="$PATH" "${env[@]}" "$BIN" >"$work/server.log" 2>&1 &
server=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 200); do curl -fsS "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

gql() { # token query
  curl -fsS "$base/graphql" -H 'content-type: application/json' ${1:+-H "authorization: Bearer $1"} -d "$2"
}
token="$(gql "" '{"query":"mutation { register(input: {email: \"fuzz@example.com\", password: \"fuzzing password\"}) { accessToken } }"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["register"]["accessToken"])')"
gql "$token" '{"query":"mutation { createProfile(input: {name: \"Fuzz\", age: 3, bio: \"\", activityLevel: HIGH}) { id } }"}' >/dev/null
gql "$token" '{"query":"mutation { updateLocation(latitude: 52.52, longitude: 13.4) }"}' >/dev/null
# Two photos complete the profile, so recommendations (which need one) are fuzzed past the
# refusal. Pictures of noise, written as PNG with the standard library.
for i in 1 2; do
  python3 - "$work/photo$i.png" "$i" <<'PY'
import random, struct, sys, zlib
rng = random.Random(int(sys.argv[2]))
w = h = 96
rows = b"".join(b"\0" + bytes(rng.randrange(256) for _ in range(w * 3)) for _ in range(h))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
open(sys.argv[1], "wb").write(png)
PY
  curl -fsS "$base/v1/photos" -H "authorization: Bearer $token" -F "file=@$work/photo$i.png" >/dev/null
done
gql "$token" '{"query":"{ me { profile { isComplete } } }"}' | grep -q '"isComplete":true' || {
  echo "the fuzzing account's profile is not complete" >&2
  exit 1
}

# Operations that would end the fuzzing session itself are left out. Schemathesis's own GraphQL
# check counts every error (a NOT_FOUND for a random id too) as a failure, so its verdict is
# not ours: ours is the server's own record — no 5xx in its request metrics, no ERROR line
# (every INTERNAL error is logged at that level) in its log.
# Run from the scratch folder: Schemathesis keeps a cache in the working directory.
(cd "$work" && "$VENV/bin/st" run "$base/graphql" \
  -H "Authorization: Bearer $token" \
  --max-examples "$EXAMPLES" \
  --exclude-name-regex 'deleteAccount|logout|changePassword|resetPassword' \
  --continue-on-failure --seed 1 --no-color ${FUZZ_EXTRA:-}) >"$work/fuzz.log" 2>&1 || true
status=0
if ! grep -q "generated" "$work/fuzz.log"; then
  cat "$work/fuzz.log" >&2
  echo "schemathesis did not run" >&2
  exit 1
fi
grep -E "generated|Tested:" "$work/fuzz.log" || true
server_errors="$(curl -fsS "$base/metrics" | awk '/^http_requests_total\{/ && /status="5[0-9][0-9]"/ { n += $NF } END { print n + 0 }')"
if [ "$server_errors" != "0" ]; then
  echo "the server answered $server_errors requests with a 5xx while being fuzzed" >&2
  status=1
fi
if grep -E ' ERROR |"level":"ERROR"' "$work/server.log"; then
  echo "the server logged errors while being fuzzed" >&2
  status=1
fi
exit "$status"
