#!/bin/sh
# ::shutdown: action of busybox init: flush and unmount everything so /data persists.
echo "hangar-guest: shutting down" > /dev/console
[ -f /run/dropbear.pid ] && kill "$(cat /run/dropbear.pid)" 2>/dev/null
sync
umount /data 2>/dev/null || mount -o remount,ro /data 2>/dev/null
umount -a -r 2>/dev/null
sync
