"""Syscall handlers, one module per family; `table` is the one list of them all."""
