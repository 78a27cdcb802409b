"""Descriptor numbers and open-file lifetimes (kernel/files.py FdTable and File
reference counts), compared with Linux."""

from harness import build, compare


def test_fd_numbers_scm_rights_and_epoll_lifetimes(platform, variant):
    compare(platform, [build("fd_numbers", variant)])
