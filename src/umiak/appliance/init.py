"""The appliance's PID 1 and DHCP hook: busybox shell scripts, written into the root at build time.

PID 1 mounts /dev first (the kernel found no /dev/console: the root has no device
nodes, so that an unprivileged build can make it), then takes the console as its
stdio; /umiak/appliance.env, written by the builder, holds the settings as shell
variables. The last line on the console is STATUS_MARK and the program's status, which
`umiak appliance boot` reads to exit with it.
"""

from umiak.appliance import STATUS_MARK

INIT = r"""#!/bin/busybox sh
# PID 1 of a umiak appliance (written by `umiak appliance build`).
bb=/bin/busybox
$bb mount -t devtmpfs devtmpfs /dev
exec 0</dev/console 1>/dev/console 2>&1
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
say() { echo "umiak-appliance: $*"; }
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t tmpfs -o mode=0755,nosuid run /run
$bb mount -t tmpfs -o mode=1777,nosuid tmp /tmp
$bb mkdir -p /dev/pts /dev/shm /run/cache
$bb mount -t devpts devpts /dev/pts
$bb mount -t tmpfs -o mode=1777 shm /dev/shm
echo 1 > /proc/sys/vm/overcommit_memory   # no swap: umiak reserves guest RAM it may not touch
. /umiak/appliance.env
say "Linux $($bb uname -r) up in $($bb cut -d' ' -f1 /proc/uptime) s"
# Drivers for the hardware that is there: /umiak/modules/order says `MODULE pci:VEN:DEV,...`
# (globs), `MODULE cpu:FLAG` or `MODULE -` (always).
pci=
for d in /sys/bus/pci/devices/*; do
  [ -r "$d/vendor" ] || continue
  read -r v < "$d/vendor"; read -r dv < "$d/device"; pci="$pci ${v#0x}:${dv#0x}"
done
flags=
while read -r l; do case "$l" in flags*) flags=" ${l#*:} "; break ;; esac; done < /proc/cpuinfo
wanted() {
  case "$1" in
    -) return 0 ;;
    cpu:*) case "$flags" in *" ${1#cpu:} "*) return 0 ;; esac ;;
    pci:*) oifs=$IFS; IFS=,; set -f; set -- ${1#pci:}; set +f; IFS=$oifs
           for p; do case "$pci " in *" "$p" "*) return 0 ;; esac; done ;;
  esac
  return 1
}
loaded=" "
while read -r m cond; do
  case "$loaded" in *" $m "*) continue ;; esac
  wanted "$cond" || continue
  $bb insmod "/umiak/modules/$m.ko" 2>/dev/null; loaded="$loaded$m "
done < /umiak/modules/order
$bb hostname "$UMIAK_HOSTNAME"
$bb ip link set lo up
nic=
i=0
while [ $i -lt 50 ]; do
  for d in /sys/class/net/*; do n=${d##*/}; if [ "$n" != lo ]; then nic=$n; break; fi; done
  [ -n "$nic" ] && break
  $bb usleep 100000; i=$((i+1))
done
if [ -z "$nic" ]; then
  say "no network interface"
else
  $bb ip link set "$nic" up
  if [ "$UMIAK_NET" = dhcp ]; then
    $bb udhcpc -i "$nic" -s /umiak/udhcpc -q -f -n -t 10 -T 1 >/dev/null 2>&1 || say "DHCP on $nic: no lease"
  else
    $bb ip addr add "$UMIAK_ADDR" dev "$nic"
    [ -n "$UMIAK_GW" ] && $bb ip route add default via "$UMIAK_GW"
    [ -n "$UMIAK_DNS" ] && echo "nameserver $UMIAK_DNS" > /run/resolv.conf
  fi
  say "network $nic $($bb ip -4 addr show dev "$nic" | $bb awk '/inet /{print $2; exit}')"
fi
plat=$UMIAK_PLATFORM
if [ "$plat" = auto ]; then
  if [ -c /dev/kvm ]; then
    plat=kvm; say "/dev/kvm is here: platform kvm"
  else
    plat=emu; say "no /dev/kvm (no hardware or nested virtualization): platform emu, a software CPU (slower)"
  fi
fi
vols=
for v in $UMIAK_VOLUMES; do
  dev=${v%%:*}; dir=${v#*:}
  i=0
  while [ ! -b "$dev" ] && [ $i -lt 100 ]; do $bb usleep 100000; i=$((i+1)); done
  if $bb mount "$dev" "$dir"; then vols="$vols -v $dir:$dir"; say "mounted $dev on $dir"
  else say "cannot mount $dev on $dir"; fi
done
pub=
for p in $UMIAK_PUBLISH; do pub="$pub -p $p"; done
export HOME=/run XDG_CACHE_HOME=/run/cache PYTHONDONTWRITEBYTECODE=1
n=0
while :; do
  say "umiak run $UMIAK_IMAGE_NAME ($($bb cut -d' ' -f1 /proc/uptime) s)"
  /usr/bin/python3 -m umiak run --platform="$plat" --net="$UMIAK_NETMODE" $pub $vols $UMIAK_RUN_OPTIONS \
    /umiak/image.img "$@"
  status=$?
  case "$UMIAK_RESTART" in
    always) ;;
    on-failure) [ "$status" -ne 0 ] || break ;;
    *) break ;;
  esac
  n=$((n+1)); say "status $status: restart $n"; $bb sleep 1
done
$bb sync
say "@@STATUS@@$status"
$bb poweroff -f
""".replace("@@STATUS@@", STATUS_MARK.removeprefix("umiak-appliance: "))

UDHCPC = r"""#!/bin/busybox sh
# udhcpc's hook (busybox sets $interface, $ip, $mask as a prefix length, $router, $dns).
bb=/bin/busybox
case "$1" in
  deconfig) $bb ip addr flush dev "$interface"; $bb ip link set "$interface" up ;;
  bound|renew)
    $bb ip addr flush dev "$interface"
    $bb ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$mtu" ] && $bb ip link set "$interface" mtu "$mtu"
    for r in $router; do $bb ip route add default via "$r" dev "$interface"; break; done
    : > /run/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /run/resolv.conf; done ;;
esac
exit 0
"""
