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

echo "== typecheck"
npx tsc --noEmit -p .
echo "== lint and format"
npm run --silent lint
npm run --silent format:check
echo "== vitest (SQLite)"
npx vitest run
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "== vitest (PostgreSQL)"
  # Tests about qemu and the guest rather than the database ran in the SQLite pass (vitest.config.ts).
  HANGAR_TEST_DB=postgres npx vitest run
else
  echo "== vitest (PostgreSQL): no server on 127.0.0.1:5432, not run"
fi
echo "== playwright"
npx playwright test

echo "== all tests passed in $(( $(date +%s) - started )) s"
