"""strace-style tracing and per-syscall statistics (imported only when asked for).

`make_tracer(options, err_stream)` builds the tracer the kernel calls for every
syscall (see tracer.py), or returns None when neither --strace nor
--syscall-summary was given.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from umiak.options import RunOptions


def make_tracer(options: "RunOptions", err_stream):
    """A Tracer for these RunOptions (strace, strace_file, trace_filter,
    strace_timestamps, syscall_summary), writing to --strace-file or err_stream."""
    strace, summary = options.strace, options.syscall_summary
    if not strace and not summary:
        return None
    from umiak.trace.tracer import Tracer
    path = options.strace_file
    out, close = err_stream, False
    if path:
        try:
            out, close = open(path, "w", encoding="utf-8", errors="backslashreplace"), True
        except OSError as err:
            from umiak.errors import UmiakError
            raise UmiakError(f"cannot write the strace file {path}: {err.strerror}") from None
    try:
        return Tracer(out, strace=strace, trace_filter=options.trace_filter,
                      timestamps=options.strace_timestamps,
                      summary=summary, close_out=close)
    except ValueError as err:   # a --trace expression we cannot read
        if close:
            out.close()
        from umiak.errors import UmiakError
        raise UmiakError(f"--trace: {err}") from None


__all__ = ["make_tracer"]
