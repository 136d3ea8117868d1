#!/bin/sh
# Find the NoCloud seed (an iso9660 labelled "cidata" on /dev/vd*, else a CD-ROM /dev/sr*),
# copy it to /run/cidata and apply it: instance-id, hostname, root's SSH keys, and the
# runcmd / user script that late.sh runs once SSH is up.
# Writes /run/hangar/cidata-dev (device used, empty if none).
SEED=/run/cidata
MNT=/mnt/cidata
YAML=/usr/lib/hangar/yaml.awk
KVER=$(cat /etc/hangar/kernel-version)
mkdir -p "$SEED" "$MNT" /run/hangar
: > /run/hangar/cidata-dev

say() { echo "hangar-guest: $*" > /dev/console; }

# iso9660 primary volume descriptor: "CD001" at byte 32769, volume id at 32808 (32 bytes).
is_iso() { [ "$(dd if="$1" bs=1 skip=32769 count=5 2>/dev/null)" = CD001 ]; }
iso_label() { dd if="$1" bs=1 skip=32808 count=32 2>/dev/null | tr -d ' \000'; }

try_dev() {
  dev=$1
  [ -b "$dev" ] || return 1
  is_iso "$dev" || return 1
  label=$(iso_label "$dev")
  mount -t iso9660 -o ro "$dev" "$MNT" 2>/dev/null || return 1
  if [ "$label" = cidata ] || [ "$label" = CIDATA ] || [ -f "$MNT/meta-data" ]; then
    for f in meta-data user-data vendor-data network-config; do
      [ -f "$MNT/$f" ] && cp "$MNT/$f" "$SEED/$f"
    done
    umount "$MNT"
    echo "$dev" > /run/hangar/cidata-dev
    return 0
  fi
  umount "$MNT"
  return 1
}

find_seed() {
  for d in /dev/vd[a-z] /dev/sr[0-9]; do try_dev "$d" && return 0; done
  return 1
}

if ! find_seed; then
  # Not on a virtio disk: load the CD-ROM drivers (virtio-scsi, PIIX IDE) and look again.
  while read -r m; do insmod "/lib/modules/$KVER/$m" 2>/dev/null; done < /etc/hangar/modules.cdrom
  i=0
  until find_seed; do
    i=$((i + 1))
    [ $i -ge 20 ] && { say "no cidata found"; break; }
    sleep 0.1
  done
fi

MD=$SEED/meta-data
UD=$SEED/user-data
[ -f "$MD" ] || : > "$MD"
[ -f "$UD" ] || : > "$UD"
yaml() { awk -v mode="$1" -v key="$2" -f "$YAML" "$3"; }

ud_kind=none
case "$(head -n 1 "$UD" | tr -d '\r')" in
  '#cloud-config'*) ud_kind=cloud-config ;;
  '#!'*) ud_kind=script ;;
esac

# instance-id
iid=$(yaml scalar instance-id "$MD")
echo "${iid:-none}" > /run/instance-id

# hostname: meta-data local-hostname, overridden by user-data hostname.
host=$(yaml scalar local-hostname "$MD")
if [ $ud_kind = cloud-config ]; then
  h=$(yaml scalar hostname "$UD"); [ -n "$h" ] && host=$h
fi
host=$(printf '%s' "$host" | tr -cd 'A-Za-z0-9.-' | cut -c1-63)
[ -n "$host" ] || host=hangar
hostname "$host"
echo "$host" > /etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s %s\n::1\tlocalhost\n' "$host" "${host%%.*}" > /etc/hosts

# root's authorized_keys: meta-data public-keys + user-data ssh_authorized_keys (any depth).
mkdir -p /root/.ssh
chmod 0700 /root /root/.ssh
{
  yaml list public-keys "$MD"
  [ $ud_kind = cloud-config ] && yaml list ssh_authorized_keys "$UD"
} | grep -E '^(ssh-|ecdsa-|sk-)' | awk '!seen[$0]++' > /root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys

# runcmd (cloud-config) or the user-data script itself; late.sh runs them after SSH is up.
rm -f /run/hangar/runcmd.sh
if [ $ud_kind = cloud-config ]; then
  cmds=$(yaml runcmd runcmd "$UD")
  if [ -n "$cmds" ]; then
    printf '#!/bin/sh\n%s\n' "$cmds" > /run/hangar/runcmd.sh
    chmod 0700 /run/hangar/runcmd.sh
  fi
elif [ $ud_kind = script ]; then
  cp "$UD" /run/hangar/runcmd.sh
  chmod 0700 /run/hangar/runcmd.sh
fi
exit 0
