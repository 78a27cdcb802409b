"""Errors of umiak itself (not of the guest): they end a run with status 125."""

EXIT_UMIAK_FAILURE = 125  # as `docker run` does, never mistaken for a guest status


class UmiakError(Exception):
    """A failure of umiak or of its input, reported as one line without a traceback."""

    status = EXIT_UMIAK_FAILURE


class PlatformUnavailable(UmiakError):
    """The requested CPU platform cannot run on this host (the message says how to fix it)."""


class ExecFormatError(UmiakError):
    """The program is not something umiak can load (not an ELF, wrong class, wrong machine...)."""
