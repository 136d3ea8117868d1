#!/usr/bin/env bash
# build-guest.sh OUTDIR — build Hangar's tiny qemu test guest from Debian bookworm packages.
#
# Nothing is installed on the host: packages are fetched with `apt-get download` into a
# cache and unpacked with `dpkg -x` into a scratch tree, from which the kernel, an
# initramfs (busybox-static + dropbear + rsync + sudo + kernel modules) and a pre-formatted
# data disk are assembled. Guest-side files live in scripts/guest/ (see README.md there).
#
# Outputs in OUTDIR: vmlinuz initrd.img cmdline disk.qcow2 build-info.txt (+ .stamp)
# Env: HANGAR_GUEST_CACHE  .deb cache dir (default OUTDIR/.debs); re-runs download nothing.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR" >&2; exit 2; }
[ $# -eq 1 ] || usage
log() { printf 'build-guest: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SCRIPT_PATH=$(readlink -f -- "${BASH_SOURCE[0]}")
SCRIPT_DIR=$(dirname -- "$SCRIPT_PATH")
GUEST_SRC=$SCRIPT_DIR/guest
mkdir -p -- "$1"
OUTDIR=$(readlink -f -- "$1")
CACHE=${HANGAR_GUEST_CACHE:-$OUTDIR/.debs}
mkdir -p -- "$CACHE"
CACHE=$(readlink -f -- "$CACHE")
OUTPUTS=(vmlinuz initrd.img cmdline disk.qcow2 build-info.txt)
DISK_SIZE=256M
# Kernel command line. console=ttyS0: serial console; quiet: printing to the emulated UART is
# slow under TCG; init_on_free=1: freed pages are zero, so a suspend (savevm) stores and a
# resume loads less; the rest skip probes that cost time under emulation and that we do not need.
CMDLINE="console=ttyS0 quiet loglevel=1 panic=-1 init_on_free=1 cryptomgr.notests i8042.noaux i8042.nomux i8042.dumbkbd tsc=reliable no_timer_check random.trust_cpu=on mitigations=off"

# --- 0. Idempotence: skip everything when the outputs match this script + guest files. ---
# The stamp is a hash of this script and every file in scripts/guest/ (names and content).
compute_stamp() {
  (
    cd -- "$SCRIPT_DIR"
    { printf '%s\n' "$CMDLINE"; sha256sum -- build-guest.sh; find guest -type f -print0 | sort -z | xargs -0 sha256sum --; } | sha256sum | cut -d' ' -f1
  )
}
STAMP=$(compute_stamp)
all_outputs_present() {
  local f
  for f in "${OUTPUTS[@]}"; do [ -s "$OUTDIR/$f" ] || return 1; done
}
if all_outputs_present && [ "$(cat -- "$OUTDIR/.stamp" 2>/dev/null)" = "$STAMP" ]; then
  log "up to date: $OUTDIR"
  exit 0
fi
# A build with the same stamp in the user's cache (made by an earlier run in another
# checkout, as a fresh clone in CI is) is copied instead of built again.
BUILD_CACHE=${HANGAR_GUEST_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hangar/hangar-tiny}
if [ "$(cat -- "$BUILD_CACHE/.stamp" 2>/dev/null)" = "$STAMP" ]; then
  mkdir -p -- "$OUTDIR"
  rm -f -- "$OUTDIR/.stamp"
  for f in "${OUTPUTS[@]}"; do
    cp -- "$BUILD_CACHE/$f" "$OUTDIR/.$f.tmp" && mv -f -- "$OUTDIR/.$f.tmp" "$OUTDIR/$f"
  done
  echo "$STAMP" > "$OUTDIR/.stamp"
  log "copied the cached build into $OUTDIR"
  exit 0
fi

for tool in apt-get apt-cache dpkg dpkg-deb cpio gzip qemu-img readelf sha256sum; do
  command -v "$tool" >/dev/null || die "missing host tool: $tool"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hangar-guest.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT
PKGROOT=$WORK/pkgroot     # every downloaded .deb unpacked here (dpkg -x), never installed
INITRD=$WORK/initrd       # the initramfs tree
mkdir -p -- "$PKGROOT" "$INITRD"

# --- 1. Download helpers. ---
# deb_for PKG: print the cached .deb for PKG, downloading it into the cache if needed.
# The candidate version comes from the local apt lists (no network); when the lists are
# missing we fall back to whatever version is cached, and only then run `apt-get update`.
APT_UPDATED=0
apt_update_once() {
  [ "$APT_UPDATED" = 1 ] && return 0
  log "running apt-get update"
  apt-get update -qq >&2 || die "apt-get update failed"
  APT_UPDATED=1
}
# Candidate versions, looked up in batches (each apt-cache run costs ~0.5 s of list parsing).
declare -A CAND=()
prime_candidates() {
  local name ver
  while read -r name ver; do CAND[$name]=$ver; done < <(
    apt-cache policy -- "$@" 2>/dev/null |
      awk '/^[^ ].*:$/ { n = substr($0, 1, length($0) - 1) }
           /^  Candidate:/ { if ($2 != "(none)") print n, $2 }')
}
candidate_version() {
  if [ -n "${CAND[$1]:-}" ]; then echo "${CAND[$1]}"; return 0; fi
  apt-cache policy -- "$1" 2>/dev/null | awk '/^  Candidate:/ { if ($2 != "(none)") print $2 }'
}
deb_for() {
  local pkg=$1 ver enc f
  ver=$(candidate_version "$pkg")
  if [ -n "$ver" ]; then
    enc=${ver//:/%3a}
    for f in "$CACHE/${pkg}_${enc}_"*.deb; do [ -f "$f" ] && { echo "$f"; return 0; }; done
  else
    # No apt metadata: reuse any cached version (newest by dpkg version order).
    f=$(for c in "$CACHE/${pkg}_"*.deb; do [ -f "$c" ] && echo "$c"; done |
        while read -r c; do printf '%s\t%s\n' "$(dpkg-deb -f -- "$c" Version)" "$c"; done |
        sort -t$'\t' -k1,1V | tail -n1 | cut -f2)
    [ -n "$f" ] && { echo "$f"; return 0; }
  fi
  log "downloading $pkg ${ver:+($ver)}"
  if ! (cd -- "$CACHE" && apt-get download -qq -- "$pkg" >&2 2>/dev/null); then
    apt_update_once
    ver=$(candidate_version "$pkg")
    [ -n "$ver" ] || die "package $pkg not found in apt lists"
    (cd -- "$CACHE" && apt-get download -qq -- "$pkg" >&2) || die "apt-get download $pkg failed"
  fi
  [ -n "$ver" ] || ver=$(candidate_version "$pkg")
  enc=${ver//:/%3a}
  for f in "$CACHE/${pkg}_${enc}_"*.deb; do [ -f "$f" ] && { echo "$f"; return 0; }; done
  die "downloaded $pkg but cannot find its .deb in $CACHE"
}

# Depends/Pre-Depends of a .deb, first alternative only, version constraints stripped.
deb_depends() {
  { dpkg-deb -f -- "$1" Pre-Depends; dpkg-deb -f -- "$1" Depends; } |
    tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/[[:space:]]//g' | sed '/^$/d'
}

declare -A SEEN=()
PKG_LIST=()   # "name version" of every package used, for build-info.txt
# fetch_unpack PKG: download + dpkg -x PKG; sets DEB to its .deb.
fetch_unpack() {
  DEB=$(deb_for "$1")
  dpkg -x "$DEB" "$PKGROOT"
  PKG_LIST+=("$1 $(dpkg-deb -f -- "$DEB" Version)")
}
# fetch_closure PKG...: fetch PKGs and, level by level, every library package they depend on
# (lib*, zlib1g), which is where the shared objects come from.
fetch_closure() {
  local queue=("$@") next p dep
  while [ ${#queue[@]} -gt 0 ]; do
    prime_candidates "${queue[@]}"
    next=()
    for p in "${queue[@]}"; do
      [ -n "${SEEN[$p]:-}" ] && continue
      SEEN[$p]=1
      fetch_unpack "$p"
      for dep in $(deb_depends "$DEB"); do
        case $dep in lib*|zlib1g) [ -n "${SEEN[$dep]:-}" ] || next+=("$dep") ;; esac
      done
    done
    queue=(${next[@]+"${next[@]}"})
  done
}

# --- 2. Kernel: resolve linux-image-cloud-amd64 to its versioned image package. ---
# The meta package only Depends on e.g. linux-image-6.1.0-XX-cloud-amd64; read that from the
# meta .deb itself so a cached build needs no apt metadata.
prime_candidates linux-image-cloud-amd64 busybox-static dropbear-bin rsync sudo
META_DEB=$(deb_for linux-image-cloud-amd64)
KPKG=$(deb_depends "$META_DEB" | grep -m1 '^linux-image-.*-cloud-amd64$') || die "cannot resolve kernel package"
PKG_LIST+=("linux-image-cloud-amd64 $(dpkg-deb -f -- "$META_DEB" Version)")
prime_candidates "$KPKG"
fetch_unpack "$KPKG"
KVER=${KPKG#linux-image-}
[ -f "$PKGROOT/boot/vmlinuz-$KVER" ] || die "kernel image missing in $KPKG"
MODSRC=$PKGROOT/lib/modules/$KVER

# --- 3. Userland packages (+ their library dependencies). ---
fetch_closure busybox-static dropbear-bin rsync sudo
BUSYBOX=$PKGROOT/bin/busybox
[ -x "$BUSYBOX" ] || die "busybox-static did not provide /bin/busybox"

# --- 4. Initramfs skeleton + busybox applet symlinks. ---
cd -- "$INITRD"
mkdir -p bin sbin usr/bin usr/sbin lib lib64 etc/dropbear dev proc sys tmp run root \
  var/log mnt data usr/share/udhcpc usr/lib/hangar etc/acpi/PWRF etc/hangar home \
  usr/libexec/sudo etc/sudoers.d etc/pam.d lib/x86_64-linux-gnu/security
ln -s /run var/run
ln -s /run/resolv.conf etc/resolv.conf
chmod 0700 root
chmod 1777 tmp
# /dev/console must exist before devtmpfs is mounted, for init's stdio.
mknod -m 600 dev/console c 5 1 && mknod -m 666 dev/null c 1 3 ||
  die "mknod failed: build-guest.sh must run as root"
install -m 0755 -- "$BUSYBOX" bin/busybox
# `busybox --list-full` gives the canonical path of each applet (bin/ls, sbin/init, ...).
"$BUSYBOX" --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] && continue
  [ -e "$applet" ] || ln -s /bin/busybox "$applet"
done
# PID 1 is busybox init (so `poweroff` works); the kernel runs /init from an initramfs.
ln -s /bin/busybox init

# --- 5. dropbear + rsync + sudo, and the ELF closure of their shared libraries. ---
install -m 0755 -- "$PKGROOT/usr/sbin/dropbear" usr/sbin/dropbear
install -m 0755 -- "$PKGROOT/usr/bin/dropbearkey" usr/bin/dropbearkey
install -m 0755 -- "$PKGROOT/usr/bin/rsync" usr/bin/rsync
# sudo (setuid root) gives the users that cloud-config `users:` creates (Hangar's own
# `hangar`) root through their `sudo:` rule; its policy plugin and two PAM modules are
# loaded at run time, so they are listed here rather than found through NEEDED.
install -m 4755 -- "$PKGROOT/usr/bin/sudo" usr/bin/sudo
install -m 0644 -- "$PKGROOT/usr/libexec/sudo/sudoers.so" usr/libexec/sudo/sudoers.so
for m in pam_permit pam_deny; do
  install -m 0644 -- "$PKGROOT/lib/x86_64-linux-gnu/security/$m.so" "lib/x86_64-linux-gnu/security/$m.so"
done

LIBDIRS=(lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib usr/lib lib64 usr/libexec/sudo)
elf_needed() {   # NEEDED sonames of an ELF file (read from the file itself, not via ldd)
  readelf -d -- "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]/\1/p'
}
elf_interp() {
  readelf -l -- "$1" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p'
}
# copy_from_pkgroot REL: copy PKGROOT/REL into the initramfs at the same path, keeping a
# symlink chain (soname -> real file) intact.
copy_from_pkgroot() {
  local rel=$1 target
  [ -e "$rel" ] || [ -L "$rel" ] && return 0
  mkdir -p -- "$(dirname -- "$rel")"
  if [ -L "$PKGROOT/$rel" ]; then
    target=$(readlink -- "$PKGROOT/$rel")
    ln -s -- "$target" "$rel"
    case $target in
      /*) copy_from_pkgroot "${target#/}" ;;
      *) copy_from_pkgroot "$(dirname -- "$rel")/$target" ;;
    esac
  else
    cp -- "$PKGROOT/$rel" "$rel"
  fi
}
# pkg_realpath REL: follow symlinks of PKGROOT/REL inside PKGROOT (absolute link targets
# point into the unpacked tree, not the host); print the final path relative to PKGROOT.
pkg_realpath() {
  local rel=$1 target n=0
  while [ -L "$PKGROOT/$rel" ] && [ $n -lt 20 ]; do
    target=$(readlink -- "$PKGROOT/$rel")
    case $target in
      /*) rel=${target#/} ;;
      *) rel=$(dirname -- "$rel")/$target ;;
    esac
    n=$((n + 1))
  done
  echo "$rel"
}
declare -A DONE_ELF=()
resolve_elf() {   # copy every library (and the loader) an ELF needs, recursively
  local file=$1 interp so d found
  [ -n "${DONE_ELF[$file]:-}" ] && return 0
  DONE_ELF[$file]=1
  interp=$(elf_interp "$file")
  if [ -n "$interp" ]; then
    [ -e "$PKGROOT$interp" ] || die "loader $interp (for $file) not in unpacked packages"
    copy_from_pkgroot "${interp#/}"
    resolve_elf "$PKGROOT/$(pkg_realpath "${interp#/}")"
  fi
  for so in $(elf_needed "$file"); do
    found=
    for d in "${LIBDIRS[@]}"; do
      if [ -e "$PKGROOT/$d/$so" ]; then found=$d/$so; break; fi
    done
    [ -n "$found" ] || die "library $so (needed by ${file#"$PKGROOT"/}) not found in unpacked packages"
    copy_from_pkgroot "$found"
    resolve_elf "$PKGROOT/$(pkg_realpath "$found")"
  done
}
for bin in usr/sbin/dropbear usr/bin/dropbearkey usr/bin/rsync usr/bin/sudo usr/libexec/sudo/sudoers.so \
  lib/x86_64-linux-gnu/security/pam_permit.so lib/x86_64-linux-gnu/security/pam_deny.so; do
  resolve_elf "$INITRD/$bin"
done

# --- 6. Kernel modules: needed ones + their dependencies, in load order. ---
# The .deb has no modules.dep (depmod runs at install time), so read each module's
# depends= from its .modinfo section. Built-in drivers (modules.builtin) need no file.
declare -A MODPATH=() MODDONE=()
while IFS= read -r -d '' ko; do
  name=${ko##*/}; name=${name%.ko}; MODPATH[${name//-/_}]=${ko#"$MODSRC"/}
done < <(find "$MODSRC/kernel" -name '*.ko' -print0)
mod_is_builtin() { grep -q -E "/${1//_/[-_]}\.ko\$" -- "$MODSRC/modules.builtin"; }
mod_deps() {
  readelf -p .modinfo -- "$MODSRC/${MODPATH[$1]}" | sed -n 's/.*\]  depends=//p' | tr ',' ' '
}
# add_module NAME LISTFILE: append NAME's dependencies, then NAME, to LISTFILE (once).
add_module() {
  local m=${1//-/_} list=$2 dep
  [ -n "${MODDONE[$m]:-}" ] && return 0
  MODDONE[$m]=1
  if [ -z "${MODPATH[$m]:-}" ]; then
    mod_is_builtin "$m" && return 0
    die "kernel module $m not found in $KPKG"
  fi
  for dep in $(mod_deps "$m"); do add_module "$dep" "$list"; done
  mkdir -p -- "lib/modules/$KVER/$(dirname -- "${MODPATH[$m]}")"
  cp -- "$MODSRC/${MODPATH[$m]}" "lib/modules/$KVER/${MODPATH[$m]}"
  echo "${MODPATH[$m]}" >> "$list"
  printf '%s:%s\n' "${MODPATH[$m]}" "$(for d in $(mod_deps "$m"); do [ -n "${MODPATH[${d//-/_}]:-}" ] && printf ' %s' "${MODPATH[${d//-/_}]}"; done)" >> "lib/modules/$KVER/modules.dep"
}
mkdir -p -- "lib/modules/$KVER"
: > "lib/modules/$KVER/modules.dep"
: > etc/hangar/modules.boot
: > etc/hangar/modules.cdrom
# Loaded at every boot: virtio disk/net/ISO, the balloon (it reports the guest's memory figures),
# ACPI power button + evdev for acpid.
for m in virtio_pci virtio_blk virtio_net virtio_balloon virtio_console isofs cdrom button evdev ext4; do add_module "$m" etc/hangar/modules.boot; done
# Loaded only when no cidata is found on /dev/vd*: CD-ROM via virtio-scsi or PIIX IDE.
for m in virtio_scsi ata_piix sr_mod; do add_module "$m" etc/hangar/modules.cdrom; done
cp -- "$MODSRC/modules.builtin" "$MODSRC/modules.order" "lib/modules/$KVER/" 2>/dev/null || true
echo "$KVER" > etc/hangar/kernel-version

# --- 7. Guest configuration and scripts from scripts/guest/. ---
install -m 0755 -- "$GUEST_SRC/rcS" etc/hangar/rcS
install -m 0755 -- "$GUEST_SRC/late.sh" etc/hangar/late.sh
install -m 0755 -- "$GUEST_SRC/cidata.sh" usr/lib/hangar/cidata.sh
install -m 0644 -- "$GUEST_SRC/yaml.awk" usr/lib/hangar/yaml.awk
install -m 0644 -- "$GUEST_SRC/mime.awk" usr/lib/hangar/mime.awk
install -m 0755 -- "$GUEST_SRC/cloud-init" usr/bin/cloud-init
install -m 0440 -- "$GUEST_SRC/sudoers" etc/sudoers
install -m 0644 -- "$GUEST_SRC/pam-sudo" etc/pam.d/sudo
chmod 0750 etc/sudoers.d
install -m 0755 -- "$GUEST_SRC/shutdown.sh" usr/lib/hangar/shutdown.sh
install -m 0755 -- "$GUEST_SRC/guest-agent" usr/lib/hangar/guest-agent
install -m 0755 -- "$GUEST_SRC/udhcpc.script" usr/share/udhcpc/default.script
install -m 0755 -- "$GUEST_SRC/acpi-power" etc/acpi/PWRF/00000080
install -m 0644 -- "$GUEST_SRC/inittab" etc/inittab
install -m 0644 -- "$GUEST_SRC/profile" etc/profile
# Accounts: root with an EMPTY password in /etc/shadow (serial login needs no password; SSH
# is key-only). The empty field stays out of /etc/passwd, where busybox's getpwuid() would
# not find root (whoami: unknown uid 0). cidata.sh adds the users of cloud-config `users:`.
printf 'root:x:0:0:root:/root:/bin/sh\nsshd:x:74:74:dropbear:/var/empty:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > etc/passwd
printf 'root::19000:0:99999:7:::\n' > etc/shadow
chmod 0600 etc/shadow
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > etc/group
printf '/bin/sh\n/bin/ash\n' > etc/shells
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' > etc/nsswitch.conf
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' > etc/hosts
echo hangar > etc/hostname
chmod 0644 etc/passwd etc/group etc/shells etc/nsswitch.conf etc/hosts etc/hostname

# --- 8. Pack the initramfs. ---
# Compressed with lz4 (legacy frame, which is what the kernel's unpacker reads) when the host
# has lz4: it decompresses several times faster than gzip under TCG; gzip otherwise.
CPIO=$WORK/initrd.cpio
find . -mindepth 1 -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet > "$CPIO"
if command -v lz4 >/dev/null; then
  INITRD_COMP=lz4; lz4 -l -9 -q -c -- "$CPIO" > "$WORK/initrd.img"
else
  INITRD_COMP=gzip; gzip -9 -n -c -- "$CPIO" > "$WORK/initrd.img"
fi
cd -- "$WORK"

# --- 9. Data disk: ext2 (busybox mke2fs from the unpacked tree, run on the host) in qcow2. ---
# Pre-formatting here means the guest never has to mkfs on first boot (it still does for a
# blank disk). ext2 because that is what busybox mke2fs makes; the kernel mounts it via ext4.
truncate -s "$DISK_SIZE" "$WORK/disk.raw"
"$BUSYBOX" mke2fs -F -b 4096 -L hangar-data -m 0 "$WORK/disk.raw" "$(( $(stat -c %s "$WORK/disk.raw") / 1024 ))" >/dev/null
qemu-img convert -q -f raw -O qcow2 "$WORK/disk.raw" "$WORK/disk.qcow2"
rm -f -- "$WORK/disk.raw"

# --- 10. Install outputs (each atomically) and write build-info.txt + stamp. ---
cp -- "$PKGROOT/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
echo "$CMDLINE" > "$WORK/cmdline"
{
  echo "hangar guest build $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kernel: $KVER ($KPKG)"
  echo "kernel compression: $(grep -E '^CONFIG_KERNEL_(LZ4|GZIP|XZ|ZSTD|LZO|LZMA|BZIP2)=y' "$PKGROOT/boot/config-$KVER" | sed 's/^CONFIG_KERNEL_//; s/=y//')"
  echo "initrd compression: $INITRD_COMP"
  echo "cmdline: $CMDLINE"
  echo "sizes (bytes): vmlinuz=$(stat -c %s vmlinuz) initrd.img=$(stat -c %s initrd.img) initrd.cpio=$(stat -c %s "$CPIO") disk.qcow2=$(stat -c %s disk.qcow2) (virtual $DISK_SIZE)"
  echo "modules (boot): $(tr '\n' ' ' < "$INITRD/etc/hangar/modules.boot" | sed 's#[^ ]*/##g')"
  echo "modules (cdrom fallback): $(tr '\n' ' ' < "$INITRD/etc/hangar/modules.cdrom" | sed 's#[^ ]*/##g')"
  echo "packages:"
  printf '  %s\n' "${PKG_LIST[@]}" | sort
} > "$WORK/build-info.txt"
rm -f -- "$OUTDIR/.stamp"
for f in "${OUTPUTS[@]}"; do
  cp -- "$WORK/$f" "$OUTDIR/.$f.tmp" && mv -f -- "$OUTDIR/.$f.tmp" "$OUTDIR/$f"
done
echo "$STAMP" > "$OUTDIR/.stamp"
# Kept for other checkouts; the stamp goes in last, once the copy is whole.
(
  mkdir -p -- "$BUILD_CACHE" && rm -f -- "$BUILD_CACHE/.stamp" &&
    for f in "${OUTPUTS[@]}"; do cp -f -- "$OUTDIR/$f" "$BUILD_CACHE/$f" || exit 1; done &&
    echo "$STAMP" > "$BUILD_CACHE/.stamp"
) || log "could not keep a copy in $BUILD_CACHE (the next checkout builds again)"
log "built $OUTDIR: kernel $KVER, initrd $(stat -c %s "$OUTDIR/initrd.img") bytes ($INITRD_COMP)"
