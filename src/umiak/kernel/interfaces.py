"""The kernel's object protocols, declared once (typing.Protocol): what mm, the VFS and
the syscall layer may ask of the objects they are given."""

import weakref
from typing import Protocol


class Mappable(Protocol):
    """The pages of a file as MAP_SHARED mappings see them (a pagecache.PageCache).

    mm asks for a page's frame when it maps it (taking one frame reference per page-table
    entry), registers itself in `mappers` so a truncate can take pages back, writes dirty
    pages back at msync/munmap/exit, and lets the cache drop what nobody maps any more."""

    mappers: weakref.WeakSet   # the AddressSpaces that map the file shared

    def translate(self, index: int, for_write: bool) -> int:
        """The guest frame of page `index` of the file (made on first use)."""
        ...

    def writeback(self, first: int = 0, last: int | None = None) -> None:
        """Dirty pages in [first, last] go to the backing store (nothing for memory files)."""
        ...

    def trim(self) -> None:
        """Some mapping went away: pages only the cache holds may be dropped."""
        ...
