"""SHA-256 for keys (the config cache's, the snapshot cache's) without hashlib, whose
OpenSSL costs ~4 ms to import and ~4 MB of every run's RSS."""


def sha256(data: bytes):
    try:
        from _sha256 import sha256 as impl  # type: ignore[import-not-found]  # CPython's own module, no stubs
    except ImportError:
        from hashlib import sha256 as impl
    return impl(data)
