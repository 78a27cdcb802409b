"""The machine's identity as files: /etc/hostname, /etc/hosts, /etc/passwd, /etc/group.

They are made when the VFS is built and placed in the root's overlay (the host's
files are never touched): the host name is --hostname (uname's nodename), and
passwd/group are the root's own with an entry added for the guest's uid and gid
(--user) when they have none, so `id`, `whoami` and getpwuid(getuid()) agree.
"""

GUEST_USER = "umiak"


def hostname_file(hostname: str) -> bytes:
    return f"{hostname}\n".encode()


def hosts_file(base: bytes | None, old_name: str, hostname: str) -> bytes:
    """The root's /etc/hosts with its own host name replaced by the VM's (the line
    `127.0.1.1 NAME` added when no line names it), or a minimal one."""
    if base is None:
        return (f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n"
                "::1\tlocalhost ip6-localhost ip6-loopback\n").encode()
    text = base.decode("utf-8", "surrogateescape")
    lines, named = [], False
    for line in text.splitlines(keepends=True):
        body, hash_, comment = line.partition("#")
        fields = body.split()
        if len(fields) >= 2 and old_name and old_name != hostname and old_name in fields[1:]:
            body = " ".join(hostname if f == old_name else f for f in fields) + ("\n" if not hash_ else " ")
            line = body + hash_ + comment
        if hostname in body.split()[1:]:
            named = True
        lines.append(line)
    out = "".join(lines)
    if not named:
        out += ("" if not out or out.endswith("\n") else "\n") + f"127.0.1.1\t{hostname}\n"
    return out.encode("utf-8", "surrogateescape")


def _ids(text: str, field: int) -> set[int]:
    out = set()
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) > field and parts[field].isdigit():
            out.add(int(parts[field]))
    return out


def _names(text: str) -> set[str]:
    return {line.split(":", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}


def _free_name(text: str, want: str) -> str:
    names = _names(text)
    name, i = want, 1
    while name in names:
        i += 1
        name = f"{want}{i}"
    return name


def _with_ids(base: bytes | None, root_line: str, want: int, line_for) -> bytes:
    """A passwd-like file (the root's, or none) with a root line when it has no id 0 and
    line_for(free name) when it has no `want` id."""
    text = (base or b"").decode("utf-8", "surrogateescape")
    if text and not text.endswith("\n"):
        text += "\n"
    have = _ids(text, 2)
    if 0 not in have:
        text = root_line + text
    if want not in have and want != 0:
        text += line_for(_free_name(text, GUEST_USER))
    return text.encode("utf-8", "surrogateescape")


def passwd_file(base: bytes | None, uid: int, gid: int) -> bytes:
    """The root's /etc/passwd (or a minimal one) with lines for uid 0 and the guest's uid."""
    return _with_ids(base, "root:x:0:0:root:/root:/bin/sh\n", uid,
                     lambda name: f"{name}:x:{uid}:{gid}:umiak guest:/:/bin/sh\n")


def group_file(base: bytes | None, gid: int, uid: int) -> bytes:
    """The root's /etc/group (or a minimal one) with lines for gid 0 and the guest's gid."""
    return _with_ids(base, "root:x:0:\n", gid, lambda name: f"{name}:x:{gid}:\n")
