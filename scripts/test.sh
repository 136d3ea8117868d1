#!/usr/bin/env bash
# test.sh — every test: set up (as the README's first line does, plus test tools), type
# check, Vitest (unit tests and the real qemu driver booting the tiny guest), Playwright
# (a real Chromium against the real server booting real guests).
set -euo pipefail
cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/.."
started=$(date +%s)

bash scripts/setup.sh --test
export HANGAR_GUEST_DIR
HANGAR_GUEST_DIR=$(readlink -f -- "${HANGAR_GUEST_DIR:-${HANGAR_STATE_DIR:-data}/images/hangar-tiny}")

phase() { echo "== $1 (at $(( $(date +%s) - started )) s)"; }

# The three static checks are single-threaded: side by side they take the time of the longest.
phase "typecheck, lint and format"
npx tsc --noEmit -p . & typecheck=$!
npm run --silent lint & lint=$!
npm run --silent format:check & format=$!
failed=0
wait "$typecheck" || { echo "typecheck failed"; failed=1; }
wait "$lint" || { echo "lint failed"; failed=1; }
wait "$format" || { echo "format check failed"; failed=1; }
[ "$failed" -eq 0 ]
phase "vitest (SQLite)"
npx vitest run
# The PostgreSQL pass and Playwright run side by side: each spends much of its time waiting
# on guests and the browser. The PostgreSQL pass prints when it is done.
pg_log=$(mktemp)
playwright_log=$(mktemp)
trap 'rm -f -- "$pg_log" "$playwright_log"' EXIT
pg_pid=""
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  phase "vitest (PostgreSQL), beside Playwright"
  # Tests about qemu and the guest rather than the database ran in the SQLite pass (vitest.config.ts).
  HANGAR_TEST_DB=postgres npx vitest run >"$pg_log" 2>&1 &
  pg_pid=$!
else
  echo "== vitest (PostgreSQL): no server on 127.0.0.1:5432, not run"
fi
phase "playwright"
playwright_failed=0
npx playwright test 2>&1 | tee -- "$playwright_log" || playwright_failed=1
postgres_failed=0
if [ -n "$pg_pid" ]; then
  wait "$pg_pid" || postgres_failed=1
  phase "vitest (PostgreSQL) output"
  cat -- "$pg_log"
fi
# The PostgreSQL output above would hide which spec failed from anyone reading the end of the
# log (CI keeps only the end), so the failures are repeated last.
if [ "$playwright_failed" -ne 0 ]; then
  phase "playwright failures (repeated from above)"
  sed -n '/^ *1) /,$p' -- "$playwright_log" | tail -n 150
  echo "== playwright failed"
fi
[ "$postgres_failed" -eq 0 ] || echo "== vitest (PostgreSQL) failed"
if [ "$playwright_failed" -ne 0 ] || [ "$postgres_failed" -ne 0 ]; then exit 1; fi

echo "== all tests passed in $(( $(date +%s) - started )) s"
