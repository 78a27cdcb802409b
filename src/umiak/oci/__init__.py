"""umiak as an OCI runtime: Docker, containerd and Kubernetes run containers as umiak VMs.

containerd's stock runc shim calls `umiak-oci` (or `umiak oci`) with runc's command
line (cli). A bundle's config.json becomes the options of one umiak run (bundle);
each container's files live in a directory under --root (state). The pid the shim
is given is the host process that runs the VM (proxy): it holds the container's
stdio, forwards signals to the guest and exits with its status. `exec` starts a
new process in that same VM over a control socket, behind a small host process of
its own that stands for it (proxy.exec_proxy).
"""

from umiak.errors import UmiakError


class OciError(UmiakError):
    """What the runtime cannot do: one line for --log (and so for `docker run`)."""
