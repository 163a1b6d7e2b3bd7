#!/usr/bin/env bash
# Introduces everyone with a profile to everyone else (as if each had been served all the
# others), so a benchmark reading random people's profiles gets profiles, not NOT_FOUND.
#
#   benches/load/introduce_all.sh postgres postgres://…/db
#   benches/load/introduce_all.sh sqlite   /path/to/pupmatch.db   PYTHON
set -euo pipefail
case "$1" in
  postgres)
    psql "$2" -qc "INSERT INTO introductions (viewer_id, person_id, introduced_at)
      SELECT a.user_id, b.user_id, CURRENT_TIMESTAMP
        FROM profiles a JOIN profiles b ON a.user_id <> b.user_id
      ON CONFLICT DO NOTHING"
    ;;
  sqlite)
    "${3:-python3}" - "$2" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=60)
db.execute("""INSERT OR IGNORE INTO introductions (viewer_id, person_id, introduced_at)
  SELECT a.user_id, b.user_id, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    FROM profiles a JOIN profiles b ON a.user_id <> b.user_id""")
db.commit()
PY
    ;;
  *) echo "postgres or sqlite" >&2; exit 2 ;;
esac
