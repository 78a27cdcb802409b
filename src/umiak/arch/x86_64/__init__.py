"""x86-64: long mode, page tables, descriptor tables, entry and exception stubs."""
