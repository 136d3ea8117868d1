#!/usr/bin/env bash
# test-boot.sh OUTDIR — boot the guest built by scripts/build-guest.sh exactly as Hangar's
# driver does (q35, TCG, virtio disk + cidata ISO, user-net with an SSH hostfwd) and check:
# time to SSH, hostname from cidata, runcmd, rsync into the guest, /data persistence across a
# reboot, and clean poweroff on QMP system_powerdown. Prints PASS/FAIL; exits 1 on failure.
# Env: KEEP=1 keeps the temp dir; BOOT_TIMEOUT (s, default 60).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
OUTDIR=$(readlink -f -- "$1")
BOOT_TIMEOUT=${BOOT_TIMEOUT:-60}
for f in vmlinuz initrd.img cmdline disk.qcow2; do
  [ -s "$OUTDIR/$f" ] || { echo "FAIL: $OUTDIR/$f missing (run scripts/build-guest.sh first)"; exit 1; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/hangar-test-boot.XXXXXX")
QEMU_PID=
cleanup() {
  if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then kill "$QEMU_PID" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf -- "$T"; fi
}
trap cleanup EXIT

FAILS=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
now() { date +%s.%N; }

# --- Inputs: overlay on the base disk, throwaway key, NoCloud seed ISO. ---
qemu-img create -q -f qcow2 -F qcow2 -b "$OUTDIR/disk.qcow2" "$T/overlay.qcow2"
ssh-keygen -q -t ed25519 -N "" -C hangar-test -f "$T/key"
mkdir "$T/seed"
cat > "$T/seed/meta-data" <<EOF
instance-id: iid-hangar-test-$$
local-hostname: meta-name
EOF
cat > "$T/seed/user-data" <<EOF
#cloud-config
hostname: tiny-test
ssh_authorized_keys:
  - $(cat "$T/key.pub")
users:
  - default
  - name: hangar
    sudo: ALL=(ALL) NOPASSWD:ALL
    lock_passwd: true
    ssh_authorized_keys:
      - $(cat "$T/key.pub")
runcmd:
  - echo runcmd-string > /tmp/runcmd-string
  - [ sh, -c, "echo runcmd-flow > /tmp/runcmd-flow" ]
  - touch /tmp/runcmd-ok
EOF
(cd "$T/seed" && genisoimage -quiet -output "$T/cidata.iso" -V cidata -J -r user-data meta-data)

PORT=$(free_port)
SSH=(ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
     -o LogLevel=ERROR -o ConnectTimeout=5 -i "$T/key" -p "$PORT" root@127.0.0.1)

# boot N: start qemu in the background with serial to $T/serial.N and QMP on $T/qmp.N.
boot() {
  local n=$1
  if [ "$n" = 1 ]; then
    SERIAL_ARGS=(-serial file:"$T/serial.$n")
  else   # production style: serial on a unix-socket chardev
    SERIAL_ARGS=(-chardev socket,id=ser0,path="$T/serial.sock",server=on,wait=off -serial chardev:ser0)
  fi
  START=$(now)
  qemu-system-x86_64 -machine q35 -accel tcg -m 256 -smp 1 -nographic \
    -kernel "$OUTDIR/vmlinuz" -initrd "$OUTDIR/initrd.img" -append "$(cat "$OUTDIR/cmdline")" \
    -drive file="$T/overlay.qcow2",format=qcow2,if=virtio \
    -drive file="$T/cidata.iso",format=raw,if=virtio,readonly=on \
    -netdev user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:"$PORT"-:22 \
    -device virtio-net-pci,netdev=net0 \
    "${SERIAL_ARGS[@]}" -monitor none -qmp unix:"$T/qmp.$n",server=on,wait=off \
    < /dev/null > "$T/qemu.$n.log" 2>&1 &
  QEMU_PID=$!
}

# wait_ssh: poll until `ssh true` works; sets BOOT_SECS.
wait_ssh() {   # $1 = boot number (serial file suffix)
  local deadline serial=$T/serial.$1
  deadline=$(( $(date +%s) + BOOT_TIMEOUT ))
  READY_SECS=?
  # ConnectTimeout=1 for polling: before the guest has its IP, qemu's user-net accepts the
  # TCP connection on the host and holds it, so a poll could otherwise hang for seconds.
  until ssh -o ConnectTimeout=1 "${SSH[@]:1}" true 2>/dev/null; do
    kill -0 "$QEMU_PID" 2>/dev/null || return 1
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    if [ "$READY_SECS" = "?" ] && grep -q 'hangar-guest: ssh ready' "$serial" 2>/dev/null; then
      READY_SECS=$(python3 -c "print('%.2f' % ($(now) - $START))")
    fi
    sleep 0.1
  done
  BOOT_SECS=$(python3 -c "print('%.2f' % ($(now) - $START))")
  if [ "$READY_SECS" = "?" ] && grep -q 'hangar-guest: ssh ready' "$serial" 2>/dev/null; then
    READY_SECS="<=$BOOT_SECS"
  fi
}

qmp() {   # qmp SOCKET CMD...: send qmp_capabilities then each command
  python3 - "$@" <<'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
f.readline()  # greeting
for cmd in ["qmp_capabilities"] + sys.argv[2:]:
    f.write(json.dumps({"execute": cmd}) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r: break
PY
}

# wait_exit SECS: wait for qemu to exit by itself.
wait_exit() {
  local i=0
  while kill -0 "$QEMU_PID" 2>/dev/null; do
    [ $i -ge $(( $1 * 10 )) ] && return 1
    sleep 0.1; i=$((i + 1))
  done
  wait "$QEMU_PID" 2>/dev/null || true
  QEMU_PID=
}

# ================= first boot =================
boot 1
if wait_ssh 1; then
  pass "ssh ready after ${BOOT_SECS}s (boot 1, TCG; console ready line seen at ${READY_SECS}s)"
  BOOT1=$BOOT_SECS
else
  fail "ssh not ready within ${BOOT_TIMEOUT}s"; tail -n 30 "$T/serial.1"; exit 1
fi

h=$("${SSH[@]}" hostname)
[ "$h" = tiny-test ] && pass "hostname = tiny-test" || fail "hostname = '$h'"
u=$("${SSH[@]}" uname -a)
case $u in *Linux*) pass "uname -a: $u" ;; *) fail "uname -a: $u" ;; esac
r=$("${SSH[@]}" 'echo $((6*7))')
[ "$r" = 42 ] && pass "arithmetic over ssh" || fail "echo \$((6*7)) gave '$r'"
iid=$("${SSH[@]}" cat /run/instance-id)
[ "$iid" = "iid-hangar-test-$$" ] && pass "instance-id" || fail "instance-id = '$iid'"
# runcmd runs just after SSH comes up: give it a moment.
ok=
for _ in $(seq 50); do
  if "${SSH[@]}" 'test -e /tmp/runcmd-ok' 2>/dev/null; then ok=1; break; fi
  sleep 0.2
done
[ -n "$ok" ] && pass "runcmd created /tmp/runcmd-ok" || fail "/tmp/runcmd-ok missing"
rs=$("${SSH[@]}" 'cat /tmp/runcmd-string /tmp/runcmd-flow' 2>/dev/null | tr '\n' ' ')
[ "$rs" = "runcmd-string runcmd-flow " ] && pass "runcmd string + flow-list items" || fail "runcmd outputs: '$rs'"
HSSH=("${SSH[@]/root@127.0.0.1/hangar@127.0.0.1}")
w=$("${HSSH[@]}" 'whoami; sudo -n whoami' 2>&1 | tr '\n' ' ')
[ "$w" = "hangar root " ] && pass "users: hangar logs in and has root through sudo -n" || fail "hangar/sudo gave '$w'"
st=$("${HSSH[@]}" 'cloud-init status --format json' 2>&1 | tr -d ' \n')
case $st in *'"status":"done"'*) pass "cloud-init status: done" ;; *) fail "cloud-init status gave '$st'" ;; esac

mkdir -p "$T/rs/sub"
echo hello > "$T/rs/a.txt"; head -c 100000 /dev/urandom > "$T/rs/sub/b.bin"
if rsync -a -e "ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -i $T/key -p $PORT" \
     "$T/rs/" root@127.0.0.1:/tmp/x/ >"$T/rsync.log" 2>&1 &&
   [ "$("${SSH[@]}" md5sum /tmp/x/sub/b.bin | cut -d' ' -f1)" = "$(md5sum < "$T/rs/sub/b.bin" | cut -d' ' -f1)" ]; then
  pass "rsync into the guest"
else
  fail "rsync: $(cat "$T/rsync.log")"
fi

"${SSH[@]}" 'grep -q " /data " /proc/mounts && echo persisted-$PPID > /data/marker && cat /data/marker' > "$T/marker" 2>&1 \
  && pass "/data mounted and writable" || fail "/data not writable: $(cat "$T/marker")"
grep -q 'hangar-guest: ssh ready' "$T/serial.1" && pass "console ready line" || fail "no 'hangar-guest: ssh ready' on console"

t0=$(now)
qmp "$T/qmp.1" system_powerdown
if wait_exit 20; then
  pass "system_powerdown: qemu exited after $(python3 -c "print('%.1f' % ($(now) - $t0))")s"
else
  fail "qemu still running 20s after system_powerdown"; tail -n 20 "$T/serial.1"
  kill "$QEMU_PID" 2>/dev/null || true; exit 1
fi

# ================= second boot (same overlay): /data persists =================
boot 2
if wait_ssh 2; then
  pass "ssh ready after ${BOOT_SECS}s (boot 2; console ready line seen at ${READY_SECS}s)"
  m=$("${SSH[@]}" 'cat /data/marker' 2>&1 || true)
  [ "$m" = "$(cat "$T/marker")" ] && pass "/data persisted across reboot" || fail "/data/marker = '$m'"
  # Serial console: "root" + Enter at the login prompt gives a shell (empty password).
  if python3 - "$T/serial.sock" > "$T/serial.2" 2>&1 <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(0.2)
buf = b""
def expect(pat, secs=15):
    global buf
    end = time.time() + secs
    while time.time() < end:
        if pat in buf: return True
        try:
            d = s.recv(4096)
            if d: buf += d; sys.stdout.write(d.decode(errors="replace")); sys.stdout.flush()
        except socket.timeout: pass
    return False
s.sendall(b"\r")
assert expect(b"login:"), "no login prompt"
buf = b""; s.sendall(b"root\r")
assert expect(b"# "), "no shell prompt after login"
buf = b""; s.sendall(b"echo serial-$((6*7))\r")
assert expect(b"serial-42"), "command over serial failed"
s.sendall(b"exit\r")
PY
  then pass "serial console login as root (empty password)"; else fail "serial login: $(tail -c 300 "$T/serial.2")"; fi
  qmp "$T/qmp.2" system_powerdown
  wait_exit 20 && pass "second powerdown" || fail "second powerdown"
else
  fail "second boot: ssh not ready"; tail -n 30 "$T/serial.2"
fi

echo "boot-to-ssh seconds: boot1=$BOOT1 boot2=${BOOT_SECS:-?}"
if [ "$FAILS" -eq 0 ]; then echo "PASS: all checks"; else echo "FAIL: $FAILS check(s) failed"; exit 1; fi
