"""`python -m umiak` is the same as the `umiak` command."""
import sys

from umiak.cli import main

sys.exit(main())
