"""`umiak run` with an ext2/3/4 image as the guest's root, for tests/test_ext4.py:

    python tests/image_run.py IMAGE [umiak run options] PROG [ARGS]

The CLI is umiak's own (umiak.cli.main); only the run options get image_root=IMAGE, so
errors, statuses and output are exactly what `umiak run` gives. (When `umiak run IMAGE`
exists this file is a shim for the tests that must name the image and the program.)
"""

import sys

import umiak.options as options

IMAGE = sys.argv[1]


class _WithImage(options.RunOptions):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.image_root = IMAGE


options.RunOptions = _WithImage   # type: ignore[misc]

from umiak.cli import main  # noqa: E402

sys.exit(main(["run", *sys.argv[2:]]))
