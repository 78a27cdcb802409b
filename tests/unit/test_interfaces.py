"""In-process tests of the declared object protocols (kernel/interfaces.py): the base
classes provide every member their protocol names, and every concrete file, node,
mapping, file system and platform overrides those members with a compatible signature,
so the kernel can call them without getattr/hasattr probes."""

import importlib
import inspect
import pkgutil
import typing

import pytest

import umiak.kernel
import umiak.platform
from umiak.kernel import interfaces
from umiak.kernel.files import File, Mapping
from umiak.kernel.vfs.nodes import FileSystem, Node
from umiak.platform.base import Platform

PAIRS = [(interfaces.FileOps, File), (interfaces.Waitable, File), (interfaces.MapSource, Mapping),
         (interfaces.Inode, Node), (interfaces.FileSys, FileSystem)]


def _import_all():
    """Every kernel module (and the platforms that import here), so __subclasses__ sees all."""
    for pkg in (umiak.kernel, umiak.platform):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            try:
                importlib.import_module(info.name)
            except Exception:   # noqa: BLE001 - a platform whose host library is missing
                pass


def _subclasses(cls):
    _import_all()
    out, todo = [], [cls]
    while todo:
        c = todo.pop()
        for s in c.__subclasses__():
            if s not in out:
                out.append(s)
                todo.append(s)
    return out


def _members(proto) -> set[str]:
    names = set()
    for klass in proto.__mro__:
        if klass in (typing.Protocol, typing.Generic, object):
            continue
        names |= set(getattr(klass, "__annotations__", {}))
        names |= {n for n in vars(klass) if not n.startswith("_")}
    return names


@pytest.mark.parametrize("proto,base", PAIRS, ids=lambda x: x.__name__)
def test_base_class_provides_every_protocol_member(proto, base):
    missing = sorted(n for n in _members(proto) if not hasattr(base, n) and n not in base.__annotations__)
    assert not missing, f"{base.__name__} lacks {missing} of {proto.__name__}"


def _positional(fn) -> list[str]:
    return [p.name for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]


@pytest.mark.parametrize("base", [File, Mapping, Node, FileSystem, Platform], ids=lambda b: b.__name__)
def test_overrides_keep_the_base_signature(base):
    """An override takes the arguments its base method does (a renamed or mistyped one
    would fail here instead of breaking the first syscall that calls it)."""
    subclasses = _subclasses(base)
    assert subclasses, f"no subclasses of {base.__name__} found"
    bad = []
    for sub in subclasses:
        for name, own in vars(sub).items():
            if name.startswith("__") or not callable(own):
                continue
            ref = inspect.getattr_static(base, name, None)
            if not inspect.isfunction(ref) or not inspect.isfunction(own):
                continue
            want, got = _positional(ref), _positional(own)
            extra_ok = all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                           for p in list(inspect.signature(own).parameters.values())[len(want):])
            if len(got) != len(want) or not extra_ok:
                bad.append(f"{sub.__module__}.{sub.__qualname__}.{name}{inspect.signature(own)} "
                           f"vs {base.__name__}.{name}{inspect.signature(ref)}")
    assert not bad, "\n".join(bad)


def test_platform_optional_methods_default_to_nothing():
    class Bare(Platform):
        pass
    p = Bare()
    assert p.tsc_clock(None) is None
    assert p.precise_interrupts() is None
    assert p.prepare() is None


def test_file_defaults_are_linux_answers():
    from umiak.kernel import abi
    from umiak.kernel.errors import EOPNOTSUPP, SyscallError
    f = File()
    assert f.host_fd() is None and f.pipe is None and not f.sigpipe_on_epipe and not f.is_regular()
    assert f.mmap_file() is None            # mmap(2) says ENODEV for such a file
    with pytest.raises(SyscallError) as e:
        f.allocate(0, 0, 1)
    assert e.value.errno == EOPNOTSUPP
    assert f.statfs()["f_type"] == abi.ANON_INODE_FS_MAGIC
    assert f.poll_mask() == abi.POLLIN | abi.POLLRDNORM   # O_RDONLY: readable, never blocks
    assert f.waitq is f.waitq                # one queue per description, made on first use
