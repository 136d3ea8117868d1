#!/bin/sh
# Find the NoCloud seed (an iso9660 labelled "cidata" on /dev/vd*, else a CD-ROM /dev/sr*),
# copy it to /run/cidata and apply it: instance-id, hostname, root's SSH keys, the users of
# `users:` (their keys and sudo rules), and the runcmd / user scripts that late.sh runs once
# SSH is up. user-data may be a #cloud-config, a #! script or a MIME multipart of those.
# Writes /run/hangar/cidata-dev (device used, empty if none).
SEED=/run/cidata
MNT=/mnt/cidata
YAML=/usr/lib/hangar/yaml.awk
MIME=/usr/lib/hangar/mime.awk
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
yaml() { awk -v mode="$1" -v key="$2" -v top="${4:-0}" -f "$YAML" "$3"; }

# --- Sort user-data into cloud-config documents (CCS) and scripts (SCRIPTS), in order. ---
PARTS=$SEED/parts
CCS=
SCRIPTS=
nsplit=0
add_part() {  # FILE TYPE ("auto": decided by the first line, as cloud-init does)
  local type=$2
  if [ "$type" = auto ]; then
    case "$(head -n 1 "$1" | tr -d '\r')" in
      '#cloud-config'*) type=text/cloud-config ;;
      '#!'*) type=text/x-shellscript ;;
      [Cc]ontent-[Tt]ype:*multipart/*|MIME-Version:*) type=multipart/mixed ;;
      *) type=ignored ;;
    esac
  fi
  case $type in
    text/cloud-config) CCS="$CCS $1" ;;
    text/x-shellscript) SCRIPTS="$SCRIPTS $1" ;;
    multipart/*) split_mime "$1" ;;
    *) say "user-data part of type $type ignored" ;;
  esac
}
split_mime() {  # FILE: each part through add_part (base64 parts decoded)
  local dir count i t enc f
  nsplit=$((nsplit + 1))
  dir=$PARTS/$nsplit
  mkdir -p "$dir"
  count=$(awk -v out="$dir" -f "$MIME" "$1") || { say "user-data is not a valid MIME multipart"; return; }
  i=1
  while [ "$i" -le "$count" ]; do
    read -r t enc < "$dir/$i.type"
    f=$dir/$i.body
    if [ "$enc" = base64 ]; then base64 -d < "$f" > "$f.decoded" && f=$f.decoded; fi
    add_part "$f" "$t"
    i=$((i + 1))
  done
}
add_part "$UD" auto

# instance-id
iid=$(yaml scalar instance-id "$MD")
echo "${iid:-none}" > /run/instance-id

# hostname: meta-data local-hostname, overridden by user-data hostname.
host=$(yaml scalar local-hostname "$MD")
for cc in $CCS; do
  h=$(yaml scalar hostname "$cc"); [ -n "$h" ] && host=$h
done
host=$(printf '%s' "$host" | tr -cd 'A-Za-z0-9.-' | cut -c1-63)
[ -n "$host" ] || host=hangar
hostname "$host"
echo "$host" > /etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s %s\n::1\tlocalhost\n' "$host" "${host%%.*}" > /etc/hosts

ssh_keys() { grep -E '^(ssh-|ecdsa-|sk-)' | awk '!seen[$0]++'; }

# root is this guest's default user: meta-data public-keys + top-level ssh_authorized_keys.
mkdir -p /root/.ssh
chmod 0700 /root /root/.ssh
{
  yaml list public-keys "$MD"
  for cc in $CCS; do yaml list ssh_authorized_keys "$cc" 1; done
} | ssh_keys > /root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys

# users: each named user gets an account (key-only: no password), its keys and sudo rules.
add_user() {  # NAME SHELL
  local uid=1000
  grep -q "^$1:" /etc/passwd && return 0
  while grep -q "^[^:]*:[^:]*:$uid:" /etc/passwd; do uid=$((uid + 1)); done
  echo "$1:*:$uid:$uid:$1:/home/$1:$2" >> /etc/passwd
  echo "$1:x:$uid:" >> /etc/group
  mkdir -p "/home/$1/.ssh"
  chmod 0755 "/home/$1"
  chmod 0700 "/home/$1/.ssh"
  chown -R "$uid:$uid" "/home/$1"
}
SUDOERS=/etc/sudoers.d/90-cloud-init-users
: > "$SUDOERS"
for cc in $CCS; do yaml users "" "$cc"; done > /run/hangar/users
while read -r what name rest; do
  case $name in default|root) continue ;; esac
  if ! printf '%s' "$name" | grep -qE '^[a-z_][a-z0-9_-]{0,31}$'; then
    say "user $name skipped: not a valid user name"
    continue
  fi
  case $what in
    user) add_user "$name" /bin/sh ;;
    shell) [ -x "$rest" ] && grep -qx "$rest" /etc/shells && sed -i "s#^\($name:[^:]*:[^:]*:[^:]*:[^:]*:[^:]*:\).*#\1$rest#" /etc/passwd ;;
    key) printf '%s\n' "$rest" | ssh_keys >> "/home/$name/.ssh/authorized_keys" ;;
    sudo)
      if printf '%s' "$rest" | grep -qE '^[][A-Za-z0-9_ ():,=/!.*+@-]+$'; then
        echo "$name $rest" >> "$SUDOERS"
      else
        say "sudo rule for $name skipped: not a plain sudoers rule"
      fi ;;
  esac
done < /run/hangar/users
for home in /home/*; do
  [ -f "$home/.ssh/authorized_keys" ] || continue
  chmod 0600 "$home/.ssh/authorized_keys"
  chown "$(stat -c %u:%g "$home")" "$home/.ssh/authorized_keys"
done
chmod 0440 "$SUDOERS"

# runcmd (of every cloud-config) and the user-data scripts; late.sh runs them after SSH is up.
SCRIPT_DIR=/run/hangar/scripts
rm -rf "$SCRIPT_DIR" /run/hangar/runcmd.sh
mkdir -p "$SCRIPT_DIR"
n=0
for f in $SCRIPTS; do
  n=$((n + 1))
  cp "$f" "$SCRIPT_DIR/part-$n"
done
for cc in $CCS; do
  cmds=$(yaml runcmd runcmd "$cc")
  [ -n "$cmds" ] && printf '%s\n' "$cmds" >> "$SCRIPT_DIR/runcmd.body"
done
[ -f "$SCRIPT_DIR/runcmd.body" ] && { printf '#!/bin/sh\n'; cat "$SCRIPT_DIR/runcmd.body"; } > "$SCRIPT_DIR/runcmd" && rm "$SCRIPT_DIR/runcmd.body"
chmod 0700 "$SCRIPT_DIR"/* 2>/dev/null
# As cloud-init's scripts_user: every script runs (in name order); any failure fails the lot.
if [ -n "$(ls "$SCRIPT_DIR")" ]; then
  printf '#!/bin/sh\nrc=0\nfor s in %s/*; do "$s" || rc=1; done\nexit $rc\n' "$SCRIPT_DIR" > /run/hangar/runcmd.sh
  chmod 0700 /run/hangar/runcmd.sh
fi
exit 0
