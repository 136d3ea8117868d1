#!/usr/bin/env bash
# setup.sh [--test] — everything Hangar needs on a fresh Debian or Ubuntu host, idempotent:
# host packages (apt, only the missing ones), npm dependencies, the Prisma clients, the
# built-in tiny guest image and the production build of the dashboard. With --test, also
# what the test suite needs (Chromium for Playwright, PostgreSQL running if installed).
set -euo pipefail
cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/.."

log() { printf 'setup: %s\n' "$*" >&2; }
with_tests=false
[ "${1:-}" = "--test" ] && with_tests=true

# 1. Host packages: qemu, qemu-img, OVMF (UEFI firmware), the cidata ISO tool, ssh + rsync
#    (exec and sync), xz-utils, gzip and zstd (compressed image imports), nftables (the
#    guests' firewall), iproute2, and what
#    scripts/build-guest.sh unpacks the guest with.
packages=(qemu-system-x86 qemu-utils ovmf genisoimage openssh-client rsync cpio binutils lz4 xz-utils gzip zstd ca-certificates nftables iproute2)
$with_tests && packages+=(chromium)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing host packages: ${missing[*]}"
  sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 1b. The unprivileged user qemu runs as when Hangar runs as root (qemu -runas).
qemu_user=${HANGAR_QEMU_USER:-hangar-qemu}
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! getent passwd "$qemu_user" >/dev/null; then
  log "creating the system user $qemu_user (qemu runs as it when Hangar runs as root)"
  as_root useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin -- "$qemu_user"
fi
if getent group kvm >/dev/null && ! id -nG -- "$qemu_user" | tr ' ' '\n' | grep -qx kvm; then
  as_root usermod -a -G kvm -- "$qemu_user"
fi

# 2. npm dependencies, reinstalled only when the lock file changed. postinstall generates
#    the Prisma clients (SQLite and PostgreSQL). An install is kept in the user's cache
#    (by lock file and Node version, as the Debian test guest is): another checkout of the
#    same lock file (a fresh clone, as CI makes) copies it in seconds instead of npm ci.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
modules_cache=${XDG_CACHE_HOME:-$HOME/.cache}/hangar/node_modules
modules_key="$lock_sum-$(node --version)"
if [ "$(cat node_modules/.hangar-lock 2>/dev/null)" != "$lock_sum" ]; then
  if [ -f "$modules_cache/$modules_key/.hangar-lock" ]; then
    log "npm dependencies: a copy of the same install from $modules_cache"
    rm -rf node_modules
    cp -a "$modules_cache/$modules_key" node_modules
    npm run --silent generate
  else
    log "npm ci"
    npm ci --no-audit --no-fund
    echo "$lock_sum" > node_modules/.hangar-lock
    # Only the newest install is kept; a copy is renamed into place once complete.
    rm -rf "$modules_cache"
    mkdir -p "$modules_cache"
    if cp -a node_modules "$modules_cache/$modules_key.partial"; then
      mv "$modules_cache/$modules_key.partial" "$modules_cache/$modules_key"
    else
      rm -rf "$modules_cache"
    fi
  fi
else
  npm run --silent generate
fi

# 3. The built-in guest (kernel + initramfs + disk), registered at start-up as hangar-tiny.
state_dir=${HANGAR_STATE_DIR:-data}
bash scripts/build-guest.sh "${HANGAR_GUEST_DIR:-$state_dir/images/hangar-tiny}"

# 4. PostgreSQL for the test suite's second database run, where the machine has it.
if $with_tests && command -v pg_ctlcluster >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || log "PostgreSQL did not start; its tests will be skipped"
fi

# 5. The dashboard's production build.
log "next build"
npx next build >/dev/null

# 6. The typed client's JavaScript and declarations (`hangar/client`).
log "client build"
npm run --silent build:client

# 7. The `hangar` command as one file: it starts without compiling TypeScript.
log "cli build"
npm run --silent build:cli
log "ready"
