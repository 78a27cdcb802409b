"""The shared-library closure of an ELF program, resolved as ld.so would, without running it.

    closure("/bin/ls")               -> [("/bin/ls", None), ("/lib64/ld-linux-x86-64.so.2", "/bin/ls"),
                                         ("/lib/x86_64-linux-gnu/libselinux.so.1", "/bin/ls"), ...]
    closure("/usr/bin/app", root="/srv/rootfs")   # paths inside that tree, as the guest sees them
    host_path("/lib/x86_64-linux-gnu/libc.so.6", root) -> the file to open on the host

PT_INTERP, then DT_NEEDED breadth first (ld.so's load order), each name found by
ld.so's search order: a name with a '/' as it is; else DT_RPATH of the needing
object and of its loaders (when the needing object has no DT_RUNPATH),
LD_LIBRARY_PATH (the `library_path` argument), DT_RUNPATH of the needing object,
/etc/ld.so.cache, then the default directories. $ORIGIN, $LIB and $PLATFORM are
expanded. Only x86-64 ELF64 candidates are accepted (a 32-bit libc on the path is
skipped, as ld.so skips it). Symbolic links inside `root` resolve inside `root`.

Pure functions over files; pyelftools reads the ELF. Shared by `umiak config app`
(static analysis) and the image builder.
"""

import os
import struct

from umiak.errors import UmiakError

DEFAULT_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib")
LIB = "lib/x86_64-linux-gnu"
PLATFORM = "x86_64"


class ElfError(UmiakError):
    """Not an ELF file, or one umiak cannot analyse."""


class MissingLibrary(UmiakError):
    """A DT_NEEDED library (or the interpreter) that the search order does not find."""


def host_path(path: str, root: str = "/") -> str:
    """The host file behind the guest path `path` in the tree `root` (links resolved inside root)."""
    if root in ("/", ""):
        return os.path.realpath(path)
    root = os.path.abspath(root)
    parts = [p for p in path.split("/") if p and p != "."]
    out: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if out:
                out.pop()
            continue
        cand = os.path.join(root, *out, part)
        if os.path.islink(cand):
            hops += 1
            if hops > 40:
                raise UmiakError(f"{path}: too many levels of symbolic links")
            target = os.readlink(cand)
            if target.startswith("/"):
                out = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        out.append(part)
    return os.path.join(root, *out)


def _guest_real(path: str, root: str) -> str:
    """The guest path with links resolved (what ld.so's l_name would show after realpath)."""
    hp = host_path(path, root)
    if root in ("/", ""):
        return hp
    return "/" + os.path.relpath(hp, os.path.abspath(root))


class ElfInfo:
    """What the closure needs from one ELF: interpreter, needed names, search paths."""

    def __init__(self, path: str, host: str):
        self.path, self.host = path, host
        self.interp: str | None = None
        self.needed: list[str] = []
        self.rpath: list[str] = []
        self.runpath: list[str] = []
        self.soname: str | None = None
        self.static = False


def read_elf(path: str, root: str = "/") -> ElfInfo:
    """Parse one ELF's dynamic section (ElfError if it is not an x86-64 ELF64)."""
    host = host_path(path, root)
    try:
        with open(host, "rb") as f:
            head = f.read(20)
    except OSError as e:
        raise ElfError(f"{path}: {e.strerror}") from None
    if head[:4] != b"\x7fELF":
        raise ElfError(f"{path}: not an ELF file")
    if head[4] != 2 or struct.unpack_from("<H", head, 18)[0] != 62:
        raise ElfError(f"{path}: not an x86-64 ELF64 file")
    from elftools.common.exceptions import ELFError
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    info = ElfInfo(path, host)
    try:
        with open(host, "rb") as f:
            elf = ELFFile(f)
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_INTERP":
                    info.interp = seg.get_interp_name()
            dyn = next((s for s in elf.iter_sections() if isinstance(s, DynamicSection)), None)
            if dyn is None:
                info.static = True
                return info
            for tag in dyn.iter_tags():
                t = tag.entry.d_tag
                if t == "DT_NEEDED":
                    info.needed.append(tag.needed)
                elif t == "DT_RPATH":
                    info.rpath += [p for p in tag.rpath.split(":") if p]
                elif t == "DT_RUNPATH":
                    info.runpath += [p for p in tag.runpath.split(":") if p]
                elif t == "DT_SONAME":
                    info.soname = tag.soname
    except (ELFError, ValueError, struct.error) as e:
        raise ElfError(f"{path}: malformed ELF ({e})") from None
    return info


def _expand(entry: str, origin: str) -> str:
    for token, value in (("$ORIGIN", origin), ("${ORIGIN}", origin), ("$LIB", LIB), ("${LIB}", LIB),
                         ("$PLATFORM", PLATFORM), ("${PLATFORM}", PLATFORM)):
        entry = entry.replace(token, value)
    return entry


def _is_x86_64(path: str, root: str) -> bool:
    try:
        with open(host_path(path, root), "rb") as f:
            head = f.read(20)
    except OSError:
        return False
    return len(head) == 20 and head[:4] == b"\x7fELF" and head[4] == 2 and struct.unpack_from("<H", head, 18)[0] == 62


def ld_so_cache(root: str = "/") -> dict[str, str]:
    """soname -> path from /etc/ld.so.cache (the new glibc-ld.so.cache1.1 format; x86-64 entries)."""
    try:
        with open(host_path("/etc/ld.so.cache", root), "rb") as f:
            data = f.read()
    except OSError:
        return {}
    magic = b"glibc-ld.so.cache1.1"
    start = data.find(magic)
    if start < 0:
        return {}
    try:
        nlibs = struct.unpack_from("<I", data, start + 20)[0]
        out: dict[str, str] = {}

        def string(off: int) -> str:
            off += start                   # offsets count from the new header
            return data[off:data.index(b"\0", off)].decode()
        for i in range(nlibs):   # header: magic+version 20, nlibs, len_strings, flags, ext, unused[3]
            flags, key, value = struct.unpack_from("<iII", data, start + 48 + 24 * i)
            if flags & 0xFF00 != 0x0300:   # FLAG_X8664_LIB64: skip 32-bit and x32 libraries
                continue
            k = string(key)
            if k not in out:               # the first entry wins, as in ld.so
                out[k] = string(value)
        return out
    except (struct.error, ValueError, UnicodeDecodeError):
        return {}


def find_library(name: str, needer: ElfInfo, loaders: list[ElfInfo], root: str = "/",
                 library_path: list[str] | None = None, cache: dict[str, str] | None = None) -> str | None:
    """The guest path ld.so would load for DT_NEEDED `name` of `needer`, or None."""
    origin = os.path.dirname(needer.path)
    if "/" in name:
        cand = _expand(name, origin)
        return cand if _is_x86_64(cand, root) else None
    dirs: list[str] = []
    if not needer.runpath:
        for obj in [needer] + loaders:
            dirs += [_expand(d, os.path.dirname(obj.path)) for d in obj.rpath]
    dirs += library_path or []
    dirs += [_expand(d, origin) for d in needer.runpath]
    for d in dirs:
        cand = os.path.join(d, name)
        if _is_x86_64(cand, root):
            return os.path.normpath(cand)
    if cache is None:
        cache = ld_so_cache(root)
    if name in cache and _is_x86_64(cache[name], root):
        return cache[name]
    for d in DEFAULT_DIRS:
        cand = os.path.join(d, name)
        if _is_x86_64(cand, root):
            return cand
    return None


def closure(path: str, root: str = "/", library_path: list[str] | None = None) -> list[tuple[str, str | None]]:
    """[(guest path, needed by)] of the program, its interpreter and every library it
    loads, in ld.so's breadth-first order, each once (by resolved path). The first row
    is the program (needed by None). MissingLibrary names what is not found and who
    needs it; ElfError a file that is not an x86-64 ELF."""
    prog = read_elf(path, root)
    out: list[tuple[str, str | None]] = [(path, None)]
    seen = {_guest_real(path, root)}
    infos: dict[str, ElfInfo] = {path: prog}
    if prog.interp:
        ip = prog.interp
        if not _is_x86_64(ip, root):
            raise MissingLibrary(f"{ip} (the interpreter of {path}): not found")
        out.append((ip, path))
        seen.add(_guest_real(ip, root))
    cache = ld_so_cache(root)
    loaded_sonames: set[str] = set()
    queue: list[tuple[ElfInfo, list[ElfInfo]]] = [(prog, [])]
    while queue:
        obj, loaders = queue.pop(0)
        for name in obj.needed:
            if name in loaded_sonames:
                continue
            found = find_library(name, obj, loaders, root, library_path, cache)
            if found is None:
                raise MissingLibrary(f"{name} (needed by {obj.path}): not found")
            real = _guest_real(found, root)
            loaded_sonames.add(name)
            if real in seen:
                continue
            seen.add(real)
            info = read_elf(found, root)
            infos[found] = info
            out.append((found, obj.path))
            if info.soname:
                loaded_sonames.add(info.soname)
            queue.append((info, [obj] + loaders))
    return out


__all__ = ["closure", "find_library", "host_path", "ld_so_cache", "read_elf", "ElfError", "MissingLibrary"]
