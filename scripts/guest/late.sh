#!/bin/sh
# Run once by busybox init after rcS (i.e. after SSH is up): the cloud-config runcmd items
# and "#!" user-data scripts, logged to /var/log/runcmd.log and the console. Then writes
# /run/hangar/status ("done" or "error"), which `cloud-init status` reports.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
cd /root || cd /
if [ -x /run/hangar/runcmd.sh ]; then
  { /run/hangar/runcmd.sh < /dev/null 2>&1; echo $? > /run/hangar/runcmd.rc; } |
    tee -a /var/log/runcmd.log > /dev/console
  echo "hangar-guest: runcmd done rc=$(cat /run/hangar/runcmd.rc)" > /dev/console
  touch /run/hangar/runcmd.done
fi
if [ "$(cat /run/hangar/runcmd.rc 2>/dev/null || echo 0)" = 0 ]; then
  echo done > /run/hangar/status.tmp
else
  echo error > /run/hangar/status.tmp
fi
mv /run/hangar/status.tmp /run/hangar/status
