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
echo "== vitest"
npx vitest run
echo "== playwright"
npx playwright test

echo "== all tests passed in $(( $(date +%s) - started )) s"
