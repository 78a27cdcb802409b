"""An ext2/3/4 image file as a read-only guest file system (CONFIG_EXT4).

Interface (the image builder and build_vfs rely on it):

    Ext4FS(image_path: str, kernel=None)   the image, checked and opened; `.root` is a Node.
                                           A corrupt, truncated or non-ext4 file raises
                                           ImageError (a UmiakError) with one line, e.g.
                                           "PATH: not an ext2/3/4 image (bad magic)".
    mount_root(kernel, image_path)         an OverlayFS whose lower is the image: the guest's
                                           writable / (writes stay in memory, as over the host).
    ImageError                             umiak.errors.UmiakError subclass.

The image is read with os.pread on one fd: the superblock and group descriptors once, an
inode when first met (then kept), a file's block map (extent tree or indirect blocks) when
the file is first read, so sequential reads are one pread per contiguous extent run.
Supported: 32/64-bit group descriptors, flex_bg and meta_bg layouts, extents and indirect
blocks (holes read as zeros, uninitialised extents too), inline data (files, directories,
symlinks), linear and htree directories (an htree directory is read as the linear one it
also is), fast and slow symlinks, device, FIFO and socket inodes, huge files, nanosecond
times, 32-bit owners, and xattrs in the inode body, an xattr block or an EA inode.
The journal is not replayed: images are built, not crashed.

This module is imported only when an image is mounted (a kernel without CONFIG_EXT4
never imports it).
"""

import bisect
import os
import stat as _stat
import struct
from typing import NoReturn

from umiak.errors import UmiakError
from umiak.kernel import abi
from umiak.kernel.errors import EBADF, EINVAL, EIO, ENOENT, ENOTDIR, ENXIO, SyscallError
from umiak.kernel.files import Mapping, Stat, seek_target
from umiak.kernel.vfs.nodes import DirFile, FileSystem, LocFile, Node, makedev

SB_OFFSET = 1024

# s_feature_incompat bits
INCOMPAT_COMPRESSION = 0x1
INCOMPAT_FILETYPE = 0x2
INCOMPAT_RECOVER = 0x4
INCOMPAT_JOURNAL_DEV = 0x8
INCOMPAT_META_BG = 0x10
INCOMPAT_EXTENTS = 0x40
INCOMPAT_64BIT = 0x80
INCOMPAT_MMP = 0x100
INCOMPAT_FLEX_BG = 0x200
INCOMPAT_EA_INODE = 0x400
INCOMPAT_DIRDATA = 0x1000
INCOMPAT_CSUM_SEED = 0x2000
INCOMPAT_LARGEDIR = 0x4000
INCOMPAT_INLINE_DATA = 0x8000
INCOMPAT_ENCRYPT = 0x10000
INCOMPAT_CASEFOLD = 0x20000
UNSUPPORTED = {INCOMPAT_COMPRESSION: "compression", INCOMPAT_JOURNAL_DEV: "an external journal device",
               INCOMPAT_DIRDATA: "dirdata", INCOMPAT_ENCRYPT: "encryption", INCOMPAT_CASEFOLD: "casefold"}
KNOWN_INCOMPAT = (INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_META_BG | INCOMPAT_EXTENTS | INCOMPAT_64BIT
                  | INCOMPAT_MMP | INCOMPAT_FLEX_BG | INCOMPAT_EA_INODE | INCOMPAT_CSUM_SEED | INCOMPAT_LARGEDIR
                  | INCOMPAT_INLINE_DATA)
RO_COMPAT_SPARSE_SUPER = 0x1
RO_COMPAT_HUGE_FILE = 0x8
COMPAT_SPARSE_SUPER2 = 0x200

# i_flags
HUGE_FILE_FL = 0x40000
EXTENTS_FL = 0x80000
EA_INODE_FL = 0x200000
INLINE_DATA_FL = 0x10000000

EXT_MAGIC = 0xF30A
XATTR_MAGIC = 0xEA020000
XATTR_PREFIX = {1: b"user.", 2: b"system.posix_acl_access", 3: b"system.posix_acl_default", 4: b"trusted.",
                6: b"security.", 7: b"system.", 8: b"system.richacl"}

# directory entry file_type -> d_type
DT_OF_FT = {1: abi.DT_REG, 2: abi.DT_DIR, 3: abi.DT_CHR, 4: abi.DT_BLK, 5: abi.DT_FIFO, 6: abi.DT_SOCK,
            7: abi.DT_LNK}
DT_OF_FMT = {_stat.S_IFREG: abi.DT_REG, _stat.S_IFDIR: abi.DT_DIR, _stat.S_IFCHR: abi.DT_CHR,
             _stat.S_IFBLK: abi.DT_BLK, _stat.S_IFIFO: abi.DT_FIFO, _stat.S_IFSOCK: abi.DT_SOCK,
             _stat.S_IFLNK: abi.DT_LNK}

_INODE = struct.Struct("<HHIIIIIHHIII60sIIII12s")   # the 128-byte base inode
_U32 = struct.Struct("<I")
_DIRENT = struct.Struct("<IHBB")
_EXT_HDR = struct.Struct("<HHHHI")
_EXT_ENTRY = struct.Struct("<IHHI")      # leaf: block, len, start_hi, start_lo
_EXT_INDEX = struct.Struct("<IIHH")      # index: block, leaf_lo, leaf_hi, unused
_XATTR_ENTRY = struct.Struct("<BBHIII")
READ_RUN = 8 << 20                       # most bytes one pread asks for


class ImageError(UmiakError):
    """The file is not an ext2/3/4 image umiak can read (one line: the path and why)."""


class Corrupt(Exception):
    """Bad metadata met while reading: ImageError at mount, EIO for the guest later."""


def _eio() -> SyscallError:
    return SyscallError(EIO)   # metadata that makes no sense


class Ext4FS(FileSystem):
    """A read-only ext2/3/4 file system read from the image file at image_path."""

    readonly = True
    fstype = "ext4"
    magic = abi.EXT4_SUPER_MAGIC

    def __init__(self, image_path: str, kernel=None):
        self.path = image_path
        self.kernel = kernel
        try:
            self.fd = os.open(image_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise ImageError(f"{image_path}: {e.strerror}") from None
        minors = getattr(kernel, "anon_minors", None)
        self.dev = makedev(7, next(minors)) if minors is not None else makedev(7, 0)   # a loop device
        self._inodes: dict[int, Ext4Node] = {}
        try:
            self._mount()
            self.root = self.node(2)
            if not _stat.S_ISDIR(self.root.mode):
                self._fail("corrupt ext2/3/4 image (the root inode is no directory)")
        except ImageError:
            os.close(self.fd)
            raise
        except (Corrupt, SyscallError, struct.error, ValueError, IndexError, OverflowError) as e:
            os.close(self.fd)
            why = e if isinstance(e, Corrupt) else os.strerror(e.errno) if isinstance(e, SyscallError) else "bad metadata"
            raise ImageError(f"{image_path}: corrupt ext2/3/4 image ({why})") from None

    # -- the superblock and group descriptors -------------------------------------------
    def _fail(self, why: str) -> NoReturn:
        raise ImageError(f"{self.path}: {why}")

    def _mount(self) -> None:
        st = os.fstat(self.fd)
        if not (_stat.S_ISREG(st.st_mode) or _stat.S_ISBLK(st.st_mode)):
            self._fail("not an ext2/3/4 image (not a file)")
        size = st.st_size if _stat.S_ISREG(st.st_mode) else os.lseek(self.fd, 0, os.SEEK_END)
        sb = os.pread(self.fd, 1024, SB_OFFSET)
        if len(sb) < 1024:
            self._fail("not an ext2/3/4 image (too short for a superblock)")
        (magic,) = struct.unpack_from("<H", sb, 0x38)
        if magic != abi.EXT4_SUPER_MAGIC:
            self._fail("not an ext2/3/4 image (bad magic)")
        u32 = lambda off: _U32.unpack_from(sb, off)[0]  # noqa: E731
        u16 = lambda off: struct.unpack_from("<H", sb, off)[0]  # noqa: E731
        self.inodes_count = u32(0x0)
        log_bs = u32(0x18)
        if log_bs > 6:
            self._fail(f"corrupt ext2/3/4 image (block size 1024<<{log_bs})")
        bs = self.block_size = 1024 << log_bs
        self.first_data_block = u32(0x14)
        self.blocks_per_group = u32(0x20)
        self.inodes_per_group = u32(0x28)
        self.rev_level = u32(0x4C)
        self.inode_size = u16(0x58) if self.rev_level >= 1 else 128
        self.compat, self.incompat, self.ro_compat = u32(0x5C), u32(0x60), u32(0x64)
        self.uuid = sb[0x68:0x78]
        self.first_meta_bg = u32(0x104)
        self.backup_bgs = (u32(0x24C), u32(0x250))
        for bit, what in UNSUPPORTED.items():
            if self.incompat & bit:
                self._fail(f"ext4 feature not supported: {what}")
        if self.incompat & ~KNOWN_INCOMPAT & 0xFFFFFFFF:
            self._fail(f"unknown ext4 incompatible features 0x{self.incompat & ~KNOWN_INCOMPAT:x}")
        self.is64 = bool(self.incompat & INCOMPAT_64BIT)
        self.desc_size = u16(0xFE) if self.is64 else 32
        blocks = u32(0x4) | ((u32(0x150) << 32) if self.is64 else 0)
        self.blocks_count = blocks
        self.free_blocks = u32(0xC) | ((u32(0x158) << 32) if self.is64 else 0)
        self.r_blocks = u32(0x8) | ((u32(0x154) << 32) if self.is64 else 0)
        self.free_inodes = u32(0x10)
        if (self.blocks_per_group == 0 or self.inodes_per_group == 0 or self.inode_size < 128
                or self.inode_size > bs or self.inode_size & (self.inode_size - 1)
                or (self.is64 and (self.desc_size < 32 or self.desc_size > 1024 or self.desc_size & (self.desc_size - 1)))
                or blocks == 0 or self.first_data_block >= blocks or self.inodes_count < 2):
            self._fail("corrupt ext2/3/4 image (bad superblock)")
        self.groups = (blocks - self.first_data_block + self.blocks_per_group - 1) // self.blocks_per_group
        if self.groups * self.inodes_per_group < self.inodes_count:
            self._fail("corrupt ext2/3/4 image (bad superblock: inode counts)")
        if blocks * bs > size:
            self._fail(f"truncated ext2/3/4 image ({size} bytes, the file system needs {blocks * bs})")
        self.has_filetype = bool(self.incompat & INCOMPAT_FILETYPE)
        self.huge = bool(self.ro_compat & RO_COMPAT_HUGE_FILE)
        self._read_groups()

    def _has_super(self, group: int) -> bool:
        if group == 0:
            return True
        if self.compat & COMPAT_SPARSE_SUPER2:
            return group in self.backup_bgs
        if group == 1 or not self.ro_compat & RO_COMPAT_SPARSE_SUPER:
            return True
        if group % 2 == 0:
            return False
        for p in (3, 5, 7):
            n = p
            while n < group:
                n *= p
            if n == group:
                return True
        return False

    def _read_groups(self) -> None:
        """Every group's inode table block (all the driver needs of the descriptors)."""
        bs, ds = self.block_size, self.desc_size
        per_block = bs // ds
        nblocks = (self.groups + per_block - 1) // per_block
        meta = bool(self.incompat & INCOMPAT_META_BG)
        raw = []
        i = 0
        while i < nblocks:
            if meta and i >= self.first_meta_bg:
                g = i * per_block
                blk = self.first_data_block + g * self.blocks_per_group + (1 if self._has_super(g) else 0)
                raw.append(self._block(blk))
                i += 1
            else:
                stop = nblocks if not meta else min(nblocks, self.first_meta_bg)
                raw.append(self._pread((self.first_data_block + 1 + i) * bs, (stop - i) * bs))
                i = stop
        data = b"".join(raw)
        tables = []
        for g in range(self.groups):
            off = g * ds
            lo = _U32.unpack_from(data, off + 8)[0]
            hi = _U32.unpack_from(data, off + 0x28)[0] if self.is64 and ds >= 64 else 0
            t = lo | (hi << 32)
            if t == 0 or t >= self.blocks_count:
                self._fail(f"corrupt ext2/3/4 image (group {g}: inode table at block {t})")
            tables.append(t)
        self.inode_tables = tables

    # -- raw reads ----------------------------------------------------------------------
    def _pread(self, offset: int, n: int) -> bytes:
        try:
            data = os.pread(self.fd, n, offset)
        except OSError as e:
            raise SyscallError(e.errno or EIO) from None
        if len(data) < n:
            raise Corrupt(f"read past the end of the image at {offset}")
        return data

    def _block(self, blk: int) -> bytes:
        if blk >= self.blocks_count:
            raise Corrupt(f"block {blk} past the end")
        return self._pread(blk * self.block_size, self.block_size)

    # -- inodes -------------------------------------------------------------------------
    def node(self, ino: int) -> "Ext4Node":
        n = self._inodes.get(ino)
        if n is None:
            if ino < 1 or ino > self.inodes_count:
                raise Corrupt(f"inode {ino} out of range")
            g, idx = divmod(ino - 1, self.inodes_per_group)
            raw = self._pread(self.inode_tables[g] * self.block_size + idx * self.inode_size, self.inode_size)
            n = self._inodes[ino] = Ext4Node(self, ino, raw)
        return n

    def node_or_eio(self, ino: int) -> "Ext4Node":
        try:
            return self.node(ino)
        except Corrupt:
            raise _eio() from None

    def statfs(self, node) -> dict:
        fsid = struct.unpack("<IIII", self.uuid)
        return dict(f_type=abi.EXT4_SUPER_MAGIC, f_bsize=self.block_size, f_blocks=self.blocks_count,
                    f_bfree=self.free_blocks, f_bavail=max(0, self.free_blocks - self.r_blocks),
                    f_files=self.inodes_count, f_ffree=self.free_inodes, f_namelen=255,
                    f_frsize=self.block_size, f_fsid=(fsid[0] ^ fsid[2], fsid[1] ^ fsid[3]),
                    f_flags=abi.ST_RDONLY | abi.ST_RELATIME)

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1
        self._inodes = {}


def _time(sec: int, extra: int | None) -> int:
    """ns from a 32-bit signed seconds field and its _extra (2 epoch bits, 30 bits of ns)."""
    if sec & 0x80000000:
        sec -= 1 << 32
    if extra is None:
        return sec * 1_000_000_000
    return (sec + ((extra & 3) << 32)) * 1_000_000_000 + (extra >> 2)


class Ext4Node(Node):
    """One inode of the image (kept by the file system once read)."""

    __slots__ = ("fs", "ino", "mode", "st", "flags", "i_block", "size", "file_acl", "raw", "extra_isize",
                 "_extents", "_starts", "_entries", "_xattrs", "_inline")

    def __init__(self, fs: Ext4FS, ino: int, raw: bytes):
        (mode, uid_lo, size_lo, atime, ctime, mtime, _dtime, gid_lo, links, blocks_lo, flags, _osd1,
         i_block, _gen, acl_lo, size_hi, _faddr, osd2) = _INODE.unpack_from(raw, 0)
        blocks_hi, acl_hi, uid_hi, gid_hi = struct.unpack_from("<HHHH", osd2, 0)
        self.fs = fs
        self.ino = ino
        self.mode = mode
        self.flags = flags
        self.i_block = i_block
        self.raw = raw
        self.size = size_lo | (size_hi << 32)
        self.file_acl = acl_lo | (acl_hi << 32)
        extra = struct.unpack_from("<H", raw, 128)[0] if len(raw) > 128 else 0
        if extra & 3 or 128 + extra > len(raw):
            extra = 0
        self.extra_isize = extra

        def ext(off):
            return _U32.unpack_from(raw, off)[0] if 128 + extra >= off + 4 and extra else None
        blocks = blocks_lo | ((blocks_hi << 32) if fs.huge else 0)
        if flags & HUGE_FILE_FL and fs.huge:
            blocks *= fs.block_size // 512
        fmt = _stat.S_IFMT(mode)
        rdev = 0
        if fmt in (_stat.S_IFCHR, _stat.S_IFBLK):
            b0, b1 = struct.unpack_from("<II", i_block, 0)
            if b0:
                rdev = makedev((b0 >> 8) & 0xFF, b0 & 0xFF)
            else:
                rdev = makedev((b1 & 0xFFF00) >> 8, (b1 & 0xFF) | ((b1 >> 12) & 0xFFF00))
        self.st = Stat(st_mode=mode, st_ino=ino, st_dev=fs.dev, st_nlink=links,
                       st_uid=uid_lo | (uid_hi << 16), st_gid=gid_lo | (gid_hi << 16),
                       st_size=self.size if fmt in (_stat.S_IFREG, _stat.S_IFDIR, _stat.S_IFLNK) else 0,
                       st_rdev=rdev, st_blksize=fs.block_size, st_blocks=blocks,
                       st_atime_ns=_time(atime, ext(0x8C)), st_mtime_ns=_time(mtime, ext(0x88)),
                       st_ctime_ns=_time(ctime, ext(0x84)))
        self._extents: list[tuple[int, int, int]] | None = None
        self._starts: list[int] = []
        self._entries: dict[str, tuple[int, int]] | None = None
        self._xattrs: dict[bytes, bytes] | None = None
        self._inline: bytes | None = None

    def __repr__(self) -> str:
        return f"Ext4Node({self.ino}, {oct(self.mode)})"

    def stat(self):
        return self.st

    @property
    def nlink(self) -> int:
        return self.st.st_nlink

    # -- the block map ------------------------------------------------------------------
    def extents(self) -> "list[tuple[int, int, int]]":
        """[(first logical block, first physical block or 0 for zeros, count)], sorted, merged."""
        if self._extents is None:
            out: list[list[int]] = []
            # Map blocks (index, indirect) count in i_blocks: a tree that reads more than the
            # inode owns is corrupt (a loop, or garbage pointers), never a long walk.
            budget = [self.st.st_blocks // (self.fs.block_size // 512) + 2]
            try:
                if self.flags & EXTENTS_FL:
                    self._walk_extents(self.i_block, out, None, budget)
                else:
                    self._walk_indirect(out, budget)
            except (Corrupt, struct.error):
                raise _eio() from None
            out.sort()
            merged: list[tuple[int, int, int]] = []
            for lb, pb, n in out:
                if merged:
                    plb, ppb, pn = merged[-1]
                    if plb + pn == lb and pb and ppb and ppb + pn == pb:
                        merged[-1] = (plb, ppb, pn + n)
                        continue
                merged.append((lb, pb, n))
            self._extents = merged
            self._starts = [e[0] for e in merged]
            return merged
        return self._extents

    def _map_block(self, blk: int, budget: list) -> bytes:
        budget[0] -= 1
        if budget[0] < 0:
            raise Corrupt(f"inode {self.ino}: more map blocks than the inode has")
        return self.fs._block(blk)

    def _walk_extents(self, data: bytes, out: list, want_depth: int | None, budget: list) -> None:
        magic, entries, _max, depth, _gen = _EXT_HDR.unpack_from(data, 0)
        if magic != EXT_MAGIC or depth > 5 or (want_depth is not None and depth != want_depth) \
                or 12 + entries * 12 > len(data):
            raise Corrupt(f"inode {self.ino}: bad extent header")
        fs = self.fs
        for i in range(entries):
            off = 12 + i * 12
            if depth == 0:
                lb, n, hi, lo = _EXT_ENTRY.unpack_from(data, off)
                if n > 32768:
                    out.append([lb, 0, n - 32768])   # uninitialised: reads as zeros
                elif n:
                    pb = lo | (hi << 32)
                    if pb + n > fs.blocks_count:
                        raise Corrupt(f"inode {self.ino}: extent past the end")
                    out.append([lb, pb, n])
            else:
                _lb, lo, hi, _ = _EXT_INDEX.unpack_from(data, off)
                self._walk_extents(self._map_block(lo | (hi << 32), budget), out, depth - 1, budget)

    def _walk_indirect(self, out: list, budget: list) -> None:
        fs = self.fs
        per = fs.block_size // 4
        ptrs = struct.unpack_from("<15I", self.i_block, 0)
        nblocks = (self.size + fs.block_size - 1) // fs.block_size
        for i in range(12):
            if ptrs[i] and i < nblocks:
                out.append([i, ptrs[i], 1])
        base = 12
        for level, p in ((1, ptrs[12]), (2, ptrs[13]), (3, ptrs[14])):
            if p and base < nblocks:
                self._indirect(p, level, base, per, nblocks, out, budget)
            base += per ** level

    def _indirect(self, blk: int, level: int, base: int, per: int, nblocks: int, out: list, budget: list) -> None:
        ptrs = struct.unpack(f"<{per}I", self._map_block(blk, budget))
        span = per ** (level - 1)
        for i, p in enumerate(ptrs):
            lb = base + i * span
            if lb >= nblocks:
                break
            if not p:
                continue
            if level == 1:
                if out and out[-1][0] + out[-1][2] == lb and out[-1][1] + out[-1][2] == p:
                    out[-1][2] += 1
                else:
                    out.append([lb, p, 1])
            else:
                self._indirect(p, level - 1, lb, per, nblocks, out, budget)

    # -- data -----------------------------------------------------------------------------
    def inline_data(self) -> bytes:
        """The bytes of an inline-data inode: i_block, then the system.data xattr."""
        data = self._inline
        if data is None:
            data = self._inline = self.i_block + self._all_xattrs().get(b"system.data", b"")
        return data

    def read_at(self, offset: int, n: int) -> bytes:
        size = self.size
        if offset >= size or n <= 0:
            return b""
        if offset + n > size:
            n = size - offset
        if self.flags & INLINE_DATA_FL:
            return self.inline_data()[offset:offset + n].ljust(n, b"\0")
        ext = self._extents if self._extents is not None else self.extents()
        fs = self.fs
        bs = fs.block_size
        end = offset + n
        i = bisect.bisect_right(self._starts, offset // bs) - 1
        if i < 0:
            i = 0
        parts = []
        pos = offset
        fd = fs.fd
        while pos < end:
            if i >= len(ext):
                parts.append(bytes(end - pos))
                break
            lb, pb, cnt = ext[i]
            start = lb * bs
            stop = start + cnt * bs
            if pos < start:                          # a hole before this extent
                k = min(start, end) - pos
                parts.append(bytes(k))
                pos += k
                continue
            if pos >= stop:
                i += 1
                continue
            k = min(stop, end) - pos
            if pb:
                try:
                    data = os.pread(fd, k, pb * bs + (pos - start))
                except OSError as e:
                    raise SyscallError(e.errno or EIO) from None
                if len(data) < k:
                    data = data.ljust(k, b"\0")
                parts.append(data)
            else:
                parts.append(bytes(k))
            pos += k
            i += 1
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read_bytes(self) -> bytes:
        """The whole file (the overlay's copy-up)."""
        out = []
        pos = 0
        while pos < self.size:
            b = self.read_at(pos, READ_RUN)
            if not b:
                break
            out.append(b)
            pos += len(b)
        return b"".join(out)

    def data_after(self, offset: int, data: bool) -> int:
        """SEEK_DATA / SEEK_HOLE: the first data (or hole) byte at or after offset; -1 for
        no data after it. Uninitialised extents are holes, as Linux reports them."""
        if self.flags & INLINE_DATA_FL:
            return offset if data else self.size
        bs = self.fs.block_size
        pos = offset
        for lb, pb, cnt in self.extents():
            start, stop = lb * bs, (lb + cnt) * bs
            if stop <= pos or not pb:
                continue
            if data:
                return max(pos, start)
            if start > pos:
                return pos
            pos = stop
        return -1 if data else min(pos, self.size)

    # -- Node -----------------------------------------------------------------------------
    def _dir(self) -> dict[str, tuple[int, int]]:
        """name -> (inode number, d_type) of a directory (read in full once)."""
        entries = self._entries
        if entries is None:
            if not _stat.S_ISDIR(self.mode):
                raise SyscallError(ENOTDIR)
            entries = {}
            try:
                if self.flags & INLINE_DATA_FL:
                    data = self.inline_data()
                    parent = _U32.unpack_from(data, 0)[0]
                    entries[".."] = (parent, abi.DT_DIR)
                    self._parse_block(data[4:60], entries, inline=True)
                    if len(data) > 60:
                        self._parse_block(data[60:], entries, inline=True)
                else:   # the blocks that hold entries (never the holes a bad i_size claims)
                    fs = self.fs
                    bs = fs.block_size
                    nblocks = (self.size + bs - 1) // bs
                    for lb, pb, cnt in self.extents():
                        cnt = min(cnt, nblocks - lb)
                        if pb and cnt > 0:
                            blob = fs._pread(pb * bs, cnt * bs)
                            for off in range(0, len(blob), bs):
                                self._parse_block(blob[off:off + bs], entries)
            except (Corrupt, struct.error):
                raise _eio() from None
            entries.pop(".", None)
            entries.pop("..", None)
            self._entries = entries
        return entries

    def _parse_block(self, blk: bytes, entries: dict, inline: bool = False) -> None:
        off, end = 0, len(blk)
        filetype = self.fs.has_filetype
        bs = self.fs.block_size
        while off + 8 <= end:
            ino, rec_len, name_len, ft = _DIRENT.unpack_from(blk, off)
            if rec_len == 0 or rec_len == 65535:
                rec_len = bs if not inline else end - off
            elif bs >= 65536:
                rec_len = (rec_len & 65532) | ((rec_len & 3) << 16)
            if rec_len < 8 or off + rec_len > end:
                raise Corrupt(f"directory {self.ino}: bad entry at {off}")
            if not filetype:
                name_len |= ft << 8
                ft = 0
            if ino and name_len and 8 + name_len <= rec_len:
                name = os.fsdecode(blk[off + 8:off + 8 + name_len])
                entries[name] = (ino, DT_OF_FT.get(ft, abi.DT_UNKNOWN))
            off += rec_len

    def lookup(self, name: str) -> "Ext4Node":
        e = self._dir().get(name)
        if e is None:
            raise SyscallError(ENOENT)
        return self.fs.node_or_eio(e[0])

    def list(self) -> list[tuple[int, int, str]]:
        out = []
        for name, (ino, t) in self._dir().items():
            if t == abi.DT_UNKNOWN:
                try:
                    t = DT_OF_FMT.get(_stat.S_IFMT(self.fs.node(ino).mode), abi.DT_UNKNOWN)
                except Corrupt:
                    pass
            out.append((ino, t, name))
        return out

    def readlink(self) -> str:
        if not _stat.S_ISLNK(self.mode):
            raise SyscallError(EINVAL)
        if self.size > max(self.fs.block_size, 4096):
            raise _eio()          # longer than any symlink ext4 can hold
        if self.flags & INLINE_DATA_FL:
            data = self.inline_data()[:self.size]
        elif self._fast_symlink():
            data = self.i_block[:self.size]
        else:
            data = self.read_at(0, self.size)
        return os.fsdecode(data)

    def _fast_symlink(self) -> bool:
        if self.flags & EA_INODE_FL:
            return 0 < self.size < 60
        ea_blocks = self.fs.block_size // 512 if self.file_acl else 0
        return self.st.st_blocks - ea_blocks == 0 if not (self.flags & HUGE_FILE_FL) else False

    def open(self, task, loc, flags: int):
        fmt = _stat.S_IFMT(self.mode)
        if fmt == _stat.S_IFDIR:
            return DirFile(loc, flags)
        if fmt == _stat.S_IFREG:
            return Ext4File(loc, flags, self)
        raise SyscallError(ENXIO)

    # -- extended attributes ---------------------------------------------------------------
    def xattrs(self) -> dict[bytes, bytes]:
        """What getxattr/listxattr see (system.data is the driver's own: inline data)."""
        return {k: v for k, v in self._all_xattrs().items() if k != b"system.data"}

    def _all_xattrs(self) -> dict[bytes, bytes]:
        """Full name -> value, from the inode body then the xattr block."""
        out = self._xattrs
        if out is None:
            out = {}
            try:
                start = 128 + self.extra_isize
                raw = self.raw
                if self.extra_isize and start + 4 <= len(raw) and _U32.unpack_from(raw, start)[0] == XATTR_MAGIC:
                    body = raw[start + 4:]
                    self._parse_xattrs(body, 0, body, out)
                if self.file_acl:
                    blk = self.fs._block(self.file_acl)
                    if _U32.unpack_from(blk, 0)[0] == XATTR_MAGIC:
                        self._parse_xattrs(blk, 32, blk, out)
            except (Corrupt, struct.error):
                raise _eio() from None
            self._xattrs = out
        return out

    def _parse_xattrs(self, data: bytes, off: int, values: bytes, out: dict) -> None:
        while off + 16 <= len(data):
            if _U32.unpack_from(data, off)[0] == 0:
                break
            name_len, index, voff, vino, vsize, _hash = _XATTR_ENTRY.unpack_from(data, off)
            name = data[off + 16:off + 16 + name_len]
            if index not in XATTR_PREFIX:
                off += (16 + name_len + 3) & ~3
                continue
            if vsize > abi.XATTR_SIZE_MAX:
                raise Corrupt(f"inode {self.ino}: an xattr of {vsize} bytes")
            if vino:
                value = self.fs.node(vino).read_at(0, vsize)
            else:
                if voff + vsize > len(values):
                    raise Corrupt(f"inode {self.ino}: xattr value past its block")
                value = values[voff:voff + vsize]
            full = XATTR_PREFIX[index] + name
            if index in (2, 3):
                value = _acl_to_xattr(value)
            out[full] = value
            off += (16 + name_len + 3) & ~3


def _acl_to_xattr(value: bytes) -> bytes:
    """An ext4 POSIX ACL (version 1, short entries for the owner classes) as the xattr
    interface gives it (version 2, 8-byte entries)."""
    if len(value) < 4 or _U32.unpack_from(value, 0)[0] != 1:
        return value
    out = [struct.pack("<I", 2)]
    off = 4
    while off + 4 <= len(value):
        tag, perm = struct.unpack_from("<HH", value, off)
        if tag in (2, 8):          # ACL_USER, ACL_GROUP carry an id
            (ident,) = _U32.unpack_from(value, off + 4)
            off += 8
        else:
            ident = 0xFFFFFFFF
            off += 4
        out.append(struct.pack("<HHI", tag, perm, ident))
    return b"".join(out)


class Ext4File(LocFile):
    """An open regular file of the image (read-only; writing opens copy up in the overlay)."""

    full_reads = True

    def __init__(self, loc, flags: int, node: Ext4Node):
        super().__init__(loc, flags)
        self.node = node
        self.pos = 0

    def is_regular(self) -> bool:
        return True

    def stat(self):
        return self.node.st

    def read(self, n: int) -> bytes:
        data = self.node.read_at(self.pos, n)
        self.pos += len(data)
        return data

    def pread(self, offset: int, n: int) -> bytes:
        return self.node.read_at(offset, n)

    def write(self, data: bytes) -> int:
        raise SyscallError(EBADF)   # opened read-only (a writable open copies up)

    def pwrite(self, offset: int, data: bytes) -> int:
        raise SyscallError(EBADF)

    def lseek(self, offset: int, whence: int) -> int:
        size = self.node.size

        def data_hole(offset: int, data: bool) -> int:
            pos = self.node.data_after(offset, data) if 0 <= offset < size else -1
            if pos < 0:
                raise SyscallError(ENXIO)
            return min(pos, size)
        self.pos = seek_target(offset, whence, self.pos, size, data_hole)
        return self.pos

    def available(self) -> int:
        return max(0, self.node.size - self.pos)

    def sync(self) -> None:
        pass

    def truncate(self, length: int) -> None:
        raise SyscallError(EINVAL)

    def statfs(self) -> dict:
        return self.node.fs.statfs(self.node)

    def mmap_file(self) -> "Ext4Mapping":
        return Ext4Mapping(self.node, self.path)


class Ext4Mapping(Mapping):
    """A mapping of an image file: pages are read from the image (MAP_SHARED ones are copies:
    nobody can change the image's file, and writes through the overlay make a new inode)."""

    writable = False

    def __init__(self, node: Ext4Node, path: str):
        self.node = node
        self.path = path

    def pread(self, offset: int, n: int) -> bytes:
        return self.node.read_at(offset, n)

    def size(self) -> int:
        return self.node.size

    def ident(self) -> tuple[int, int]:
        return self.node.fs.dev, self.node.ino


def mount_root(kernel, image_path: str):
    """The guest's /: the image read-only with the in-memory overlay over it (an OverlayFS
    whose lower_fs is the Ext4FS; its fd closes with the VFS if put in vfs.host_filesystems)."""
    from umiak.kernel.vfs.memfs import OverlayFS
    return OverlayFS(kernel, Ext4FS(image_path, kernel))


__all__ = ["Ext4FS", "ImageError", "mount_root"]
