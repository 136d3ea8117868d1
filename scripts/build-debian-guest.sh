#!/usr/bin/env bash
# build-debian-guest.sh OUTDIR — a Debian 12 (bookworm) cloud guest built from Debian
# packages, shaped like Debian's genericcloud qcow2: the distribution's cloud-init, kernel
# and services, booted by its own bootloader (no kernel handed to qemu), UEFI and BIOS.
#
# Disk (GPT, 2 GiB virtual, partitions numbered as in Debian's cloud images):
#   14  BIOS boot   GRUB i386-pc core image (BIOS: the MBR's boot.img jumps into it)
#   15  ESP (FAT)   EFI/BOOT/BOOTX64.EFI: a GRUB x86_64-efi image (UEFI, removable path)
#    1  root ext4   last on the disk, so cloud-init's growpart can grow it
# Both GRUB images carry the same embedded config: find the root by filesystem UUID and boot
# /vmlinuz + /initrd.img, the symlinks the kernel package keeps current, so a kernel
# upgrade inside the guest still boots.
#
# No loop devices and no mounts: the root tree comes from mmdebstrap, the root filesystem
# from `mkfs.ext4 -d`, the ESP from mkfs.vfat + mtools, the partitions are copied into a
# sparse file laid out by sfdisk, then `qemu-img convert -O qcow2`.
#
# Packages come from the mirror this machine's apt is configured with (/etc/apt/sources.list*).
# Host tools missing are installed with apt-get. Must run as root (mmdebstrap's chroot).
#
# Outputs in OUTDIR: disk.qcow2 build-info.txt, and .stamp (a hash of this script, the package
# list and the suite). A run whose stamp matches returns at once; a failed run leaves the
# previous outputs or none, never a half-built image marked as done.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR" >&2; exit 2; }
[ $# -eq 1 ] || usage
log() { printf 'build-debian-guest: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
started=$SECONDS

SCRIPT_PATH=$(readlink -f -- "${BASH_SOURCE[0]}")
SUITE=bookworm
# What makes it a Debian cloud guest. systemd-sysv + udev + dbus: the init system, devices,
# and hostnamectl (cloud-init sets the hostname through it). ifupdown + isc-dhcp-client: the
# network cloud-init renders (/etc/network/interfaces.d/50-cloud-init); dhclient also writes
# resolv.conf. cloud-guest-utils: growpart. e2fsprogs: resize2fs (cloud-init resizefs).
PACKAGES=(
  linux-image-cloud-amd64 initramfs-tools systemd-sysv udev dbus
  cloud-init openssh-server sudo
  ifupdown isc-dhcp-client iproute2 netbase
  qemu-guest-agent cloud-guest-utils e2fsprogs ca-certificates
)
DISK_SIZE_MIB=2048
BIOS_START=2048        # sectors; partition 14, 3 MiB
BIOS_SECTORS=6144
ESP_START=8192         # partition 15, 64 MiB
ESP_SECTORS=131072
ROOT_START=139264      # partition 1, to the end (minus the GPT backup: 33 sectors, rounded to 1 MiB)
ROOT_SECTORS=$(( DISK_SIZE_MIB * 2048 - ROOT_START - 2048 ))
KERNEL_ARGS="ro console=tty0 console=ttyS0,115200n8"
OUTPUTS=(disk.qcow2 build-info.txt)

[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap builds the tree in a chroot)"
mkdir -p -- "$1"
OUTDIR=$(readlink -f -- "$1")

# --- 0. One build at a time per OUTDIR; nothing to do when the stamp matches. ---
exec 9> "$OUTDIR/.lock"
flock 9
STAMP=$({ sha256sum < "$SCRIPT_PATH"; printf '%s\n' "$SUITE" "${PACKAGES[@]}"; } | sha256sum | cut -d' ' -f1)
outputs_present() {
  local f
  for f in "${OUTPUTS[@]}"; do [ -s "$OUTDIR/$f" ] || return 1; done
}
if outputs_present && [ "$(cat -- "$OUTDIR/.stamp" 2>/dev/null)" = "$STAMP" ]; then
  log "up to date: $OUTDIR ($(( SECONDS - started )) s)"
  exit 0
fi

# --- 1. Host tools, installed from Debian's packages when missing. ---
host_packages=(mmdebstrap grub-efi-amd64-bin grub-pc-bin grub-common mtools dosfstools fdisk e2fsprogs qemu-utils)
missing=()
for pkg in "${host_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing host packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. The mirror: the URIs this machine's apt uses for Debian (deb822 and one-line lists). ---
apt_uris() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case $f in
      *.sources) awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$f" ;;
      *) awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; break } }' "$f" ;;
    esac
  done
}
MIRROR=$(apt_uris | grep -E '/debian/?$' | head -n1 || true)
SECURITY=$(apt_uris | grep -E '/debian-security/?$' | head -n1 || true)
[ -n "$MIRROR" ] || die "no Debian mirror in /etc/apt/sources.list*"
MIRROR=${MIRROR%/}
SECURITY=${SECURITY%/}
sources=("deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main")
[ -n "$SECURITY" ] && sources+=("deb $SECURITY $SUITE-security main")
# The host's apt settings on Release file dates (a frozen mirror has expired Valid-Until).
aptopts=()
for key in Acquire::Check-Valid-Until Acquire::Check-Date; do
  value=$(apt-config dump "$key" | sed -n "s/^$key \"\(.*\)\";$/\1/p")
  [ -n "$value" ] && aptopts+=(--aptopt="$key \"$value\"")
done

# Scratch space next to OUTDIR so the finished image is moved in, not copied.
WORK=$(mktemp -d "$OUTDIR/.build.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT
ROOT=$WORK/root
ROOT_UUID=$(cat /proc/sys/kernel/random/uuid)

# --- 3. The root tree. ---
log "mmdebstrap $SUITE from $MIRROR (${#PACKAGES[@]} packages)"
# Documentation, manual pages and translations are left out; mmdebstrap itself empties the
# apt lists and package cache at the end. The root is mounted read-only first (`ro`), so
# systemd-fsck-root checks it before it is remounted read-write.
mmdebstrap --mode=root --variant=minbase --format=directory \
  --include="$(IFS=,; echo "${PACKAGES[*]}")" \
  "${aptopts[@]}" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook="echo 'UUID=$ROOT_UUID / ext4 rw,discard,errors=remount-ro 0 1' > \"\$1/etc/fstab\"" \
  --customize-hook='echo debian > "$1/etc/hostname"' \
  --customize-hook='printf "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" > "$1/etc/hosts"' \
  --customize-hook='printf "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n" > "$1/etc/network/interfaces"' \
  --customize-hook='echo LANG=C.UTF-8 > "$1/etc/default/locale"' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*_key "$1"/etc/ssh/ssh_host_*_key.pub' \
  --customize-hook='rm -f "$1/var/lib/dbus/machine-id"; : > "$1/etc/machine-id"' \
  --customize-hook='rm -rf "$1"/var/log/*.log "$1"/var/log/apt/*' \
  "$SUITE" "$ROOT" "${sources[@]}" >&2
[ -e "$ROOT/vmlinuz" ] && [ -e "$ROOT/initrd.img" ] || die "the kernel package left no /vmlinuz and /initrd.img"
KVER=$(basename -- "$(readlink -- "$ROOT/vmlinuz")"); KVER=${KVER#vmlinuz-}

# --- 4. GRUB: the same embedded config for UEFI and BIOS. ---
cat > "$WORK/grub.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
search --no-floppy --fs-uuid --set=root $ROOT_UUID
linux /vmlinuz root=UUID=$ROOT_UUID $KERNEL_ARGS
initrd /initrd.img
boot
EOF
GRUB_MODULES=(part_gpt part_msdos ext2 search search_fs_uuid linux boot serial terminal echo test normal)
grub-mkimage -O x86_64-efi -p /EFI/BOOT -c "$WORK/grub.cfg" -o "$WORK/BOOTX64.EFI" "${GRUB_MODULES[@]}" efi_gop all_video
grub-mkimage -O i386-pc -p /boot/grub -c "$WORK/grub.cfg" -o "$WORK/core.img" "${GRUB_MODULES[@]}" biosdisk
[ "$(stat -c %s "$WORK/core.img")" -le $(( BIOS_SECTORS * 512 )) ] || die "GRUB core image does not fit the BIOS boot partition"

# --- 5. Filesystems, each built in its own file. ---
mkfs.vfat -n EFI -C "$WORK/esp.img" $(( ESP_SECTORS / 2 )) >/dev/null
mmd -i "$WORK/esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$WORK/esp.img" "$WORK/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
# orphan_file and metadata_csum_seed (defaults of newer e2fsprogs) are unknown to GRUB 2.06.
mkfs.ext4 -q -F -L root -U "$ROOT_UUID" -O ^orphan_file,^metadata_csum_seed -E root_owner=0:0 \
  -d "$ROOT" "$WORK/root.img" $(( ROOT_SECTORS / 2 ))K
rm -rf -- "$ROOT"

# --- 6. The disk: GPT on a sparse file, partitions copied in, BIOS boot code in place. ---
DISK=$WORK/disk.raw
truncate -s "${DISK_SIZE_MIB}M" "$DISK"
# Partition numbers as in Debian's cloud images (root 1, BIOS boot 14, ESP 15), given as
# sfdisk's "<device><number> :" prefix.
sfdisk --quiet --no-reread --no-tell-kernel "$DISK" <<EOF
label: gpt
${DISK}1 : start=$ROOT_START, size=$ROOT_SECTORS, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"
${DISK}14 : start=$BIOS_START, size=$BIOS_SECTORS, type=21686148-6449-6E6F-744E-656564454649, name="bios"
${DISK}15 : start=$ESP_START, size=$ESP_SECTORS, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="esp"
EOF
dd if="$WORK/root.img" of="$DISK" bs=1M seek=$(( ROOT_START / 2048 )) conv=notrunc,sparse status=none
dd if="$WORK/esp.img" of="$DISK" bs=1M seek=$(( ESP_START / 2048 )) conv=notrunc,sparse status=none
rm -f -- "$WORK/root.img" "$WORK/esp.img"
# BIOS: what grub-bios-setup would do, without a block device. The core image goes into the
# BIOS boot partition with its first sector's block list pointing at its second sector; the
# MBR gets boot.img's code (not its partition table) pointing at the core image.
le64() { printf '%016x' "$1" | sed 's/../& /g' | awk '{ for (i = NF; i >= 1; i--) printf "\\x%s", $i }'; }
printf "$(le64 $(( BIOS_START + 1 )))" | dd of="$WORK/core.img" bs=1 seek=$(( 0x1f4 )) conv=notrunc status=none
dd if="$WORK/core.img" of="$DISK" bs=512 seek="$BIOS_START" conv=notrunc status=none
cp /usr/lib/grub/i386-pc/boot.img "$WORK/boot.img"
printf "$(le64 "$BIOS_START")" | dd of="$WORK/boot.img" bs=1 seek=$(( 0x5c )) conv=notrunc status=none
printf '\x90\x90' | dd of="$WORK/boot.img" bs=1 seek=$(( 0x66 )) conv=notrunc status=none
dd if="$WORK/boot.img" of="$DISK" bs=440 count=1 conv=notrunc status=none

qemu-img convert -q -f raw -O qcow2 "$DISK" "$WORK/disk.qcow2"
rm -f -- "$DISK"

# --- 7. Install the outputs, then the stamp that marks them done. ---
{
  echo "hangar debian guest build $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "suite: $SUITE from $MIRROR${SECURITY:+ and $SECURITY}"
  echo "kernel: $KVER"
  echo "boot: UEFI (ESP EFI/BOOT/BOOTX64.EFI) and BIOS (GRUB i386-pc in the BIOS boot partition)"
  echo "root filesystem UUID: $ROOT_UUID"
  echo "kernel arguments: $KERNEL_ARGS"
  echo "disk.qcow2: $(stat -c %s "$WORK/disk.qcow2") bytes (virtual ${DISK_SIZE_MIB} MiB)"
  echo "packages requested: ${PACKAGES[*]}"
} > "$WORK/build-info.txt"
rm -f -- "$OUTDIR/.stamp"
for f in "${OUTPUTS[@]}"; do mv -f -- "$WORK/$f" "$OUTDIR/$f"; done
echo "$STAMP" > "$OUTDIR/.stamp"
log "built $OUTDIR/disk.qcow2 ($(du -m "$OUTDIR/disk.qcow2" | cut -f1) MiB, kernel $KVER) in $(( SECONDS - started )) s"
