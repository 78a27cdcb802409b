"""Loading ELF programs into a fresh address space: static, static-PIE and PT_INTERP."""
