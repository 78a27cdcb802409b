"""The shared-library closure of an ELF program, resolved as glibc's ld.so would, by reading
ELF files (never by running them): the one resolver of `umiak config app` (static analysis,
umiak.config.static) and of the image builder (umiak.image).

    closure("/bin/ls")            -> [("/bin/ls", ""), ("/lib64/ld-linux-x86-64.so.2", "/bin/ls"),
                                      ("/lib/x86_64-linux-gnu/libselinux.so.1", "/bin/ls"), ...]
    closure("/usr/bin/x", root="/srv/rootfs")   # paths are the guest's, looked up under root
    real_path(root, guest)        -> the host file behind a guest path (links resolved inside root)

PT_INTERP; then DT_NEEDED breadth first (ld.so's load order), each name through the
DT_RPATH of the loading object and its loaders (when the object has no DT_RUNPATH),
LD_LIBRARY_PATH (the `library_path` argument), DT_RUNPATH, the root's
/etc/ld.so.cache, then the default directories; `$ORIGIN`, `$LIB` and `$PLATFORM`
expanded; candidates of another ELF class or machine skipped (a 32-bit libc on the
path, as ld.so skips it); a name already loaded (by path or SONAME) not loaded twice.
Symbolic links inside `root` resolve inside `root`. The paths returned are those ld.so
would open (perhaps symlinks: umiak.image.stage copies the chain). pyelftools reads
the ELF files.
"""

from __future__ import annotations

import os
import posixpath
import struct

from umiak.errors import UmiakError

# Debian's multiarch directories first (its ld.so's system dirs), then upstream glibc's.
DEFAULT_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib")
LIB_EXPANSIONS = ("lib/x86_64-linux-gnu", "lib64")   # $LIB: Debian's value, then upstream's
_CACHE_MAGIC = b"glibc-ld.so.cache1.1"
_FLAG_X86_64_LIBC6 = 0x0303
_MAX_LINKS = 40


class MissingLibrary(UmiakError):
    """A DT_NEEDED library (or PT_INTERP) that no search path has."""

    def __init__(self, name: str, needed_by: str, where: str = ""):
        self.name, self.needed_by = name, needed_by
        super().__init__(f"{name} (needed by {needed_by}) not found{where}")


class NotElf(UmiakError):
    """Not an ELF file, or not an x86-64 one."""


ElfError = NotElf


def closure(path: str, root: str = "/", missing: list | None = None,
            library_path: list[str] | None = None) -> list[tuple[str, str]]:
    """[(guest path, the guest path of the file that needs it)] for `path` and everything it loads,
    `path` itself first (needed by ""). A library nobody provides raises MissingLibrary, or with
    a `missing` list is appended there as (name, needed_by) and skipped. `library_path` is
    LD_LIBRARY_PATH's directories."""
    _need_elftools()
    return _Resolver(root, library_path).run(path, missing)


def interpreter(path: str, root: str = "/") -> str | None:
    """The program's PT_INTERP (None for a static program)."""
    _need_elftools()
    return _Elf(real_path(root, path), path).interp


def _need_elftools() -> None:
    try:
        import elftools  # noqa: F401
    except ImportError:
        raise UmiakError("reading ELF files needs pyelftools (pip install pyelftools==0.32)") from None


def host_path(root: str, guest: str) -> str:
    """The host path of a guest path under root (no symlink resolution)."""
    return guest if root in ("/", "") else os.path.join(root, guest.lstrip("/"))


def real_path(root: str, guest: str) -> str:
    """The host file behind the guest path, symbolic links followed inside root (the path
    itself when it does not resolve)."""
    return host_path(root, resolve(root, guest) or guest)


def _walk(root: str, guest: str) -> tuple[str | None, list[str], str]:
    """Follow the guest path inside root as the kernel would (absolute link targets are the
    root's, `..` stops at its top): (the path it names, or None when a component is
    missing or links loop; each symlink met, in order; the path as far as it was walked)."""
    parts = [p for p in guest.split("/") if p]
    done: list[str] = []
    links: list[str] = []
    missing = False
    while parts:
        name = parts.pop(0)
        if name == ".":
            continue
        if name == "..":
            if done:
                done.pop()
            continue
        cur = "/" + "/".join(done + [name])
        hp = host_path(root, cur)
        try:
            st = os.lstat(hp)
        except OSError:
            missing = True
            done.append(name)
            continue
        if (st.st_mode & 0o170000) == 0o120000:
            if len(links) >= _MAX_LINKS:
                return None, links, cur
            links.append(cur)
            target = os.readlink(hp)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        done.append(name)
    path = "/" + "/".join(done)
    return (None if missing else path), links, path


def resolve(root: str, guest: str) -> str | None:
    """The guest path `guest` names after following every symlink inside root; None when
    it does not exist."""
    return _walk(root, guest)[0]


def symlink_chain(root: str, guest: str) -> list[str]:
    """Every guest path that must exist for `guest` to resolve as it does under root: each symlink
    met on the way (directories included) and the final file, in the order they are met."""
    found, links, _path = _walk(root, guest)
    return links + [found] if found is not None else links


class _Elf:
    """What ld.so reads of one object: interpreter, needed names, search paths, SONAME."""

    def __init__(self, hp: str, label: str):
        from elftools.common.exceptions import ELFError
        from elftools.elf.dynamic import DynamicSegment
        from elftools.elf.elffile import ELFFile
        self.interp: str | None = None
        self.needed: list[str] = []
        self.rpath: list[str] = []
        self.runpath: list[str] | None = None
        self.soname: str | None = None
        try:
            with open(hp, "rb") as f:
                elf = ELFFile(f)
                if elf.elfclass != 64 or elf["e_machine"] != "EM_X86_64":
                    raise NotElf(f"{label}: not an x86-64 ELF file")
                # The sections when there are (cheap to reach); the segments of a stripped file.
                dyn = elf.get_section_by_name(".dynamic") if elf.num_sections() else None
                interp = elf.get_section_by_name(".interp") if dyn is not None else None
                if dyn is not None:
                    if interp is not None:
                        self.interp = interp.data().rstrip(b"\0").decode("utf-8", "surrogateescape")
                else:
                    for seg in elf.iter_segments():
                        if seg["p_type"] == "PT_INTERP":
                            self.interp = seg.get_interp_name()
                        elif seg["p_type"] == "PT_DYNAMIC" and isinstance(seg, DynamicSegment):
                            dyn = seg
                if dyn is None or not hasattr(dyn, "iter_tags"):
                    return
                for tag in dyn.iter_tags():
                    t = tag.entry.d_tag
                    if t == "DT_NEEDED":
                        self.needed.append(tag.needed)
                    elif t == "DT_RPATH":
                        self.rpath += [p for p in tag.rpath.split(":") if p]
                    elif t == "DT_RUNPATH":
                        self.runpath = (self.runpath or []) + [p for p in tag.runpath.split(":") if p]
                    elif t == "DT_SONAME":
                        self.soname = tag.soname
        except ELFError as e:
            raise NotElf(f"{label}: not a usable ELF file ({e})") from None
        except OSError as e:
            raise UmiakError(f"{label}: {e.strerror}") from None


def is_elf(hp: str) -> bool:
    """An x86-64 ELF file (ld.so skips a candidate of another class or machine)."""
    try:
        with open(hp, "rb") as f:
            head = f.read(20)
    except OSError:
        return False
    return (len(head) == 20 and head[:4] == b"\x7fELF" and head[4] == 2
            and struct.unpack_from("<H", head, 18)[0] == 62)


def read_ld_cache(root: str) -> dict[str, str]:
    """SONAME -> path of the root's /etc/ld.so.cache (x86-64 entries without hwcaps)."""
    try:
        with open(host_path(root, "/etc/ld.so.cache"), "rb") as f:
            data = f.read()
    except OSError:
        return {}
    base = data.find(_CACHE_MAGIC)
    if base < 0 or len(data) < base + 48:
        return {}
    nlibs = struct.unpack_from("<I", data, base + 20)[0]
    out: dict[str, str] = {}

    def string(off: int) -> str:
        start = base + off
        end = data.find(b"\0", start)
        return data[start:end if end >= 0 else len(data)].decode("utf-8", "surrogateescape")
    for i in range(nlibs):
        pos = base + 48 + 24 * i
        if pos + 24 > len(data):
            break
        flags, key, value, _osv, hwcap = struct.unpack_from("<iIIIQ", data, pos)
        if flags & 0xFFFF != _FLAG_X86_64_LIBC6 or hwcap:
            continue
        name = string(key)
        out.setdefault(name, string(value))   # the first entry wins, as in ld.so
    return out


class _Resolver:
    def __init__(self, root: str, library_path: list[str] | None = None):
        self.root = os.path.abspath(root)
        self.library_path = [d for d in (library_path or []) if d.startswith("/")]
        self._cache: dict[str, str] | None = None
        self.elves: dict[str, _Elf] = {}

    def hp(self, guest: str) -> str:
        return host_path(self.root, guest)

    def elf(self, guest: str, label: str) -> _Elf:
        e = self.elves.get(guest)
        if e is None:
            e = self.elves[guest] = _Elf(self.hp(resolve(self.root, guest) or guest), label)
        return e

    @property
    def ld_cache(self) -> dict[str, str]:
        if self._cache is None:
            self._cache = read_ld_cache(self.root)
        return self._cache

    def expand(self, entry: str, origin: str) -> list[str]:
        out = [entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
               .replace("${PLATFORM}", "x86_64").replace("$PLATFORM", "x86_64")]
        if "$LIB" in entry or "${LIB}" in entry:
            out = [o.replace("${LIB}", lib).replace("$LIB", lib) for o in out for lib in LIB_EXPANSIONS]
        return [posixpath.normpath(o) for o in out if o.startswith("/")]

    def usable(self, guest: str) -> bool:
        real = resolve(self.root, guest)
        return real is not None and os.path.isfile(self.hp(real)) and is_elf(self.hp(real))

    def find(self, name: str, chain: list[str]) -> tuple[str | None, str]:
        """(guest path, '') or (None, where it was looked for)."""
        obj = chain[-1]
        me = self.elves[obj]
        dirs: list[str] = []
        if me.runpath is None:
            for loader in reversed(chain):
                e = self.elves[loader]
                dirs += [d for p in e.rpath for d in self.expand(p, self.origin(loader, chain))]
        dirs += self.library_path
        if me.runpath is not None:
            dirs += [d for p in me.runpath for d in self.expand(p, self.origin(obj, chain))]
        for d in dirs:
            cand = posixpath.join(d, name)
            if self.usable(cand):
                return cand, ""
        cached = self.ld_cache.get(name)
        if cached and self.usable(cached):
            return cached, ""
        for d in DEFAULT_DIRS:   # (-z nodeflib, which would skip them, is not honoured)
            cand = posixpath.join(d, name)
            if self.usable(cand):
                return cand, ""
        where = (" in " + ":".join(dirs) + "," if dirs else " in") + " ld.so.cache or " + ":".join(DEFAULT_DIRS)
        return None, where

    def origin(self, guest: str, chain: list[str]) -> str:
        """$ORIGIN: the directory of the object; for the program, of its resolved path (as ld.so)."""
        if guest == chain[0]:
            return posixpath.dirname(resolve(self.root, guest) or guest)
        return posixpath.dirname(guest)

    def run(self, path: str, missing: list | None) -> list[tuple[str, str]]:
        if not path.startswith("/"):
            raise UmiakError(f"{path}: a guest path must be absolute")
        if resolve(self.root, path) is None:
            raise UmiakError(f"{path}: No such file or directory" + (f" under {self.root}" if self.root != "/" else ""))
        out: list[tuple[str, str]] = [(path, "")]
        seen_paths = {path}
        by_name: dict[str, str] = {}
        prog = self.elf(path, path)
        if prog.interp:
            if not self.usable(prog.interp):
                self._missing(missing, prog.interp, path, "")
            else:
                out.append((prog.interp, path))
                seen_paths.add(prog.interp)
                interp = self.elf(prog.interp, prog.interp)
                by_name[posixpath.basename(prog.interp)] = prog.interp
                if interp.soname:
                    by_name[interp.soname] = prog.interp
        # Breadth first, as ld.so loads: each object's chain of loaders gives its RPATH scope.
        queue: list[list[str]] = [[path]]
        while queue:
            chain = queue.pop(0)
            obj = chain[-1]
            for name in self.elves[obj].needed:
                found: str | None
                if "/" in name:
                    found = posixpath.normpath(name if name.startswith("/") else posixpath.join("/", name))
                    where = ""
                    if not self.usable(found):
                        found, where = None, ""
                elif name in by_name:
                    continue
                else:
                    found, where = self.find(name, chain)
                if found is None:
                    self._missing(missing, name, obj, where)
                    by_name[name] = ""
                    continue
                by_name[name] = found
                if found in seen_paths:
                    continue
                seen_paths.add(found)
                e = self.elf(found, found)
                if e.soname:
                    by_name.setdefault(e.soname, found)
                out.append((found, obj))
                queue.append(chain + [found])
        return out

    @staticmethod
    def _missing(missing: list | None, name: str, needed_by: str, where: str) -> None:
        if missing is None:
            raise MissingLibrary(name, needed_by, where)
        missing.append((name, needed_by))


def referenced_names(paths: list[str], names: set[str], root: str = "/") -> set[str]:
    """Which of `names` these objects' dynamic string tables hold (the symbols they import,
    or export: the rules that ask only name functions libc defines). A string search, since
    walking the symbol tables of big objects with pyelftools takes seconds."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    out: set[str] = set()
    wanted = {n: b"\0" + n.encode() + b"\0" for n in names}
    for p in paths:
        try:
            with open(host_path(root, resolve(root, p) or p), "rb") as f:
                sec = ELFFile(f).get_section_by_name(".dynstr")
                data = b"\0" + sec.data() if sec is not None else b""
        except (ELFError, OSError):
            continue
        out.update(n for n, needle in wanted.items() if needle in data)
    return out


__all__ = ["DEFAULT_DIRS", "ElfError", "MissingLibrary", "NotElf", "closure", "host_path", "interpreter", "is_elf",
           "read_ld_cache", "real_path", "referenced_names", "resolve", "symlink_chain"]
