"""Networking of one VM: socket files, address and control-message codecs, network modes.

    base.py     the Socket file every socket is, cmsg and sockaddr helpers
    host.py     AF_INET/AF_INET6/AF_NETLINK sockets: real host sockets, non-blocking on
                the host; the guest's blocking, O_NONBLOCK and timeouts are emulated
    unix.py     AF_UNIX, written in Python: pairs, path names (kept per VM, checked
                against the guest's VFS), abstract names (per VM), SCM_RIGHTS that
                passes guest File objects, SCM_CREDENTIALS, SO_PEERCRED
    stack.py    NetStack: the mode (host | private | none), where host sockets are
                made, published ports, /etc/resolv.conf of the private modes
    nshelper.py the helper process that lives in a private network namespace and
                hands sockets made there to umiak (SCM_RIGHTS over a socketpair)

`vm_stack(kernel)` gives the VM's NetStack, made on first use (imported lazily by
`syscalls/net.py`, so programs without sockets never load any of this).
"""

from umiak.errors import UmiakError
from umiak.kernel.errors import EACCES, SyscallError


def vm_stack(kernel):
    """The VM's NetStack (made on first use; the private modes start at once)."""
    st = kernel._net
    if st is None:
        from umiak.kernel.net.stack import NetStack
        st = kernel._net = NetStack(kernel.options, kernel.warn)
        if st.mode != "host":
            start(kernel)
    return st


def start(kernel) -> None:
    """Make the VM's network now: in the private modes the namespace, the published
    ports and the guest's /etc/resolv.conf and /etc/hosts. Kernel.spawn should call
    it when options.net != "host" (else it happens at the first socket call)."""
    st = vm_stack(kernel)
    if st._started:
        return
    try:
        st.start()
    except UmiakError as e:
        kernel.warn(str(e))
        raise SyscallError(EACCES) from None
    files = st.etc_files()
    if files:
        from umiak.kernel.vfs.nodes import SynthFile, SynthFS
        for path, data in files.items():
            fs = SynthFS(0x2F)
            fs.readonly = True
            fs.root = SynthFile(fs, lambda task, d=data: d, 0o644)
            kernel.vfs.mount(path, fs, readonly=True)


def stop(kernel) -> None:
    """Release the VM's network: forwarders, the namespace helper."""
    st = kernel._net
    if st is not None:
        st.close()
