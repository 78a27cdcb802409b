"""The staged tree an image is made from: a host directory laid out as the guest's /.

Files come from a source root (the host's /, or a --from/--deb/--from-oci tree) with the
symlinks that lead to them (merged /usr: /bin -> usr/bin), keeping modes, owners and
mtimes; everything the stage itself makes gets a fixed time, so that the same inputs
give the same tree (and so the same image bytes).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from umiak.errors import UmiakError
from umiak.elfdeps import host_path, symlink_chain


class Stage:
    def __init__(self, path: str):
        self.path = path
        self.made: set[str] = set()     # guest paths the stage created (directories, generated files)

    def hp(self, guest: str) -> str:
        return host_path(self.path, guest)

    def exists(self, guest: str) -> bool:
        return os.path.lexists(self.hp(guest))

    def mkdirs(self, guest: str) -> None:
        """The directory and its parents (as real directories unless the stage has them already)."""
        parts = [p for p in guest.split("/") if p]
        cur = ""
        for p in parts:
            cur += "/" + p
            hp = self.hp(cur)
            if not os.path.lexists(hp):
                os.mkdir(hp, 0o755)
                self.made.add(cur)

    def copy_from(self, root: str, guest: str) -> bool:
        """Copy guest path `guest` of `root` into the stage at the same path, with every symlink
        on its way (so it resolves the same); False when root lacks it."""
        chain = symlink_chain(root, guest)
        if not chain:
            return False
        for g in chain:
            self._copy_one(host_path(root, g), g, tree=False)
        return True

    def copy_host(self, src: str, guest: str) -> None:
        """--add: a host file or tree at guest path `guest` (a tree is copied as `cp -a` would)."""
        if not os.path.lexists(src):
            raise UmiakError(f"--add {src}: No such file or directory")
        self._copy_one(src, guest, tree=True)

    def _copy_one(self, src: str, guest: str, tree: bool) -> None:
        import posixpath
        dst = self.hp(guest)
        self.mkdirs(posixpath.dirname(guest))
        if os.path.islink(src):
            if os.path.lexists(dst):
                return
            os.symlink(os.readlink(src), dst)
            _chown(src, dst, follow=False)
            st = os.lstat(src)
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        elif os.path.isdir(src):
            if tree:
                if os.path.isdir(dst) and not os.path.islink(dst):
                    _cp_a(src.rstrip("/") + "/.", dst)
                else:
                    _cp_a(src, dst)
            elif not os.path.lexists(dst):
                os.mkdir(dst)
                shutil.copystat(src, dst)
                _chown(src, dst)
        else:
            if os.path.lexists(dst):
                if os.path.isdir(dst) and not os.path.islink(dst):
                    raise UmiakError(f"{guest}: a directory in the image already, cannot add a file there")
                os.unlink(dst)
            try:
                shutil.copy2(src, dst, follow_symlinks=False)
            except OSError as e:
                raise UmiakError(f"{src}: {e.strerror}") from None
            _chown(src, dst)

    def write(self, guest: str, data: bytes, mode: int = 0o644) -> None:
        """A file the build generates (metadata, configuration)."""
        import posixpath
        self.mkdirs(posixpath.dirname(guest))
        hp = self.hp(guest)
        if os.path.lexists(hp):
            os.unlink(hp)
        with open(hp, "wb") as f:
            f.write(data)
        os.chmod(hp, mode)
        self.made.add(guest)

    def walk(self):
        """(guest path, lstat) of everything in the stage, sorted (a stable order)."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.path):
            dirnames.sort()
            rel = dirpath[len(self.path):] or "/"
            for n in sorted(dirnames + filenames):
                g = (rel.rstrip("/") + "/" + n)
                out.append((g, os.lstat(os.path.join(dirpath, n))))
        out.sort()
        return out

    def normalise(self, epoch: int | None) -> int:
        """Fixed times: with `epoch` (SOURCE_DATE_EPOCH) every time clamped to it; what the
        stage made, and every directory, gets `epoch` or else the newest input file's mtime.
        Returns the time used."""
        entries = self.walk()
        newest = 0
        for g, st in entries:
            if not (st.st_mode & 0o170000) == 0o040000 and g not in self.made:
                newest = max(newest, int(st.st_mtime))
        fixed = epoch if epoch is not None else newest
        for g, st in reversed(entries):   # children before parents: a parent's time is set last
            hp = self.hp(g)
            is_dir = (st.st_mode & 0o170000) == 0o040000
            t = fixed if (is_dir or g in self.made) else int(st.st_mtime)
            if epoch is not None:
                t = min(t, epoch)
            os.utime(hp, (t, t), follow_symlinks=False)
        os.utime(self.path, (fixed, fixed))
        return fixed


def _chown(src: str, dst: str, follow: bool = True) -> None:
    if os.geteuid() != 0:
        return
    try:
        st = os.stat(src) if follow else os.lstat(src)
        os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=follow)
    except OSError:
        pass


def _cp_a(src: str, dst: str) -> None:
    """A tree with its symlinks, hard links, modes, owners and times (coreutils does it best)."""
    proc = subprocess.run(["cp", "-a", "--", src, dst], capture_output=True, text=True)
    if proc.returncode != 0:
        msg = proc.stderr.strip().splitlines()
        raise UmiakError(msg[0] if msg else f"copying {src} failed")
