"""The Linux kernel ABI, in Python: tasks, memory, files, signals and the syscall table."""
