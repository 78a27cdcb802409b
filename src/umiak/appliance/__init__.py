"""Appliances: a bootable disk that runs one umiak image on a machine of its own.

    umiak appliance build -o redis.raw redis.img     (umiak.appliance.build)
    umiak appliance boot redis.raw -p 6379:6379      (umiak.appliance.boot: QEMU + OVMF)

umiak's kernel is a Python program on a host, so what a cloud machine boots is a small
Linux (Debian's cloud kernel: its NVMe, ENA and virtio drivers serve the hardware) whose
PID 1 is a short shell script (busybox) that configures the first NIC, mounts data
volumes, and starts `python3 -m umiak run` on the image; the application still runs in
umiak's micro-VM. The disk is GPT: an EFI system partition with systemd-boot, the kernel
and a loader entry, and an ext4 root (mkfs.ext4 -d) with python3 from Debian's packages,
umiak, the image and /umiak/appliance.json. Nothing needs root, loop devices or mounts.
"""

APPLIANCE_META = "/umiak/appliance.json"
STATUS_MARK = "umiak-appliance: exit status "
