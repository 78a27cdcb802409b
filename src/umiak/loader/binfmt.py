"""Which program a path names: an ELF file, or a `#!` script whose interpreter runs it.

Like Linux's binfmt_script, a script's argv becomes
[interpreter, optional argument, script path, original argv[1:]...], and at
most four interpreters may be chained.
"""

import os
from collections.abc import Callable

from umiak.errors import ExecFormatError
from umiak.loader.elf import ElfImage, parse_elf

MAX_INTERPRETERS = 4


class TooManyInterpreters(ExecFormatError):
    pass


def _shebang(data: bytes, name: str) -> tuple[bytes, bytes | None]:
    line = data[2:].split(b"\n", 1)[0][:255].strip(b" \t\r")
    if not line:
        raise ExecFormatError(f"{name}: script with an empty #! line")
    parts = line.split(None, 1)
    interp = parts[0]
    arg = parts[1].strip(b" \t") if len(parts) > 1 else None
    return interp, arg or None


def resolve_program(read: Callable[[str], bytes], path: str, argv: list[bytes]) -> tuple[ElfImage, str, list[bytes]]:
    """(ELF image, path of the ELF file, argv) for running `path` with `argv`."""
    for _ in range(MAX_INTERPRETERS + 1):
        data = read(path)
        if data[:2] != b"#!":
            return parse_elf(data, path), path, argv
        interp, arg = _shebang(data, path)
        argv = [interp] + ([arg] if arg else []) + [os.fsencode(path)] + list(argv[1:])
        path = interp.decode("utf-8", "surrogateescape")
    raise TooManyInterpreters(f"{path}: too many levels of #! interpreters")
