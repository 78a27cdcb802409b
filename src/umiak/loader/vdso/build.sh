#!/bin/sh
# Rebuild vdso.so from vdso.S (the committed vdso.so is this script's output).
set -e
cd "$(dirname "$0")"
gcc -nostdlib -shared -fPIC -Wl,-T,vdso.lds -Wl,--version-script=vdso.map \
    -Wl,--hash-style=both -Wl,-soname=linux-vdso.so.1 -Wl,--build-id=none -Wl,--strip-all \
    -Wl,-z,max-page-size=4096 -o "${1:-vdso.so}" vdso.S
