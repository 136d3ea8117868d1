#!/bin/sh
# Run once by busybox init after rcS (i.e. after SSH is up): the cloud-config runcmd items
# (or a "#!" user-data script), logged to /var/log/runcmd.log and the console.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
cd /root || cd /
[ -x /run/hangar/runcmd.sh ] || exit 0
{ /run/hangar/runcmd.sh < /dev/null 2>&1; echo $? > /run/hangar/runcmd.rc; } |
  tee -a /var/log/runcmd.log > /dev/console
echo "hangar-guest: runcmd done rc=$(cat /run/hangar/runcmd.rc)" > /dev/console
touch /run/hangar/runcmd.done
