"""Descriptor numbers and open-file lifetimes (kernel/files.py FdTable and File
reference counts), compared with Linux."""

from harness import build, compare


def test_fd_numbers_scm_rights_and_epoll_lifetimes(platform, variant):
    compare(platform, [build("fd_numbers", variant)])


def test_file_kinds_epoll_sigpipe_fallocate_fstatfs(platform, variant):
    """What each kind of open file (pipe, tmpfs and root files, socket, eventfd, epoll,
    memfd, device) answers to the calls that depend on its kind (files.File's members)."""
    compare(platform, [build("file_kinds", variant)])
