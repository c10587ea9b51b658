#!/usr/bin/env python3
"""Copies kernel modules and everything they depend on into an initramfs tree.

    modules.py MODULES_DIR DEST_DIR NAME...   (?NAME: only if it is a module)

A NAME that the kernel has built in (listed in MODULES_DIR/modules.builtin)
needs no file and is left out.

MODULES_DIR is a kernel's /lib/modules/<release> as unpacked by
kernels/fetch.sh. The Debian packages ship no modules.dep (depmod runs at
install time), so dependencies are read from each module's own `.modinfo`
section (`depends=a,b`). Modules are written uncompressed (busybox insmod
then needs no xz/zstd support) as DEST_DIR/<name>.ko, and the load order,
dependencies first, is printed one name per line on stdout.
"""

import lzma
import os
import re
import sys

try:
    import zstandard  # optional: only kernels with .ko.zst modules need it
except ImportError:  # pragma: no cover
    zstandard = None


def canonical(name):
    # The kernel treats '-' and '_' in module names as the same character.
    return name.replace("-", "_")


def index_modules(root):
    """Module name -> path of its file, for every .ko[.xz|.zst|.gz] under root."""
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            m = re.match(r"(.+)\.ko(\.xz|\.zst|\.gz)?$", f)
            if m:
                found.setdefault(canonical(m.group(1)), os.path.join(dirpath, f))
    return found


def builtin_modules(root):
    """Names of the modules built into the kernel (modules.builtin: one
    kernel/<dir>/<name>.ko path a line); empty when the file is missing."""
    try:
        with open(os.path.join(root, "modules.builtin")) as f:
            return {canonical(os.path.basename(line.strip())[: -len(".ko")]) for line in f if line.strip()}
    except FileNotFoundError:
        return set()


def read_module(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        import gzip

        return gzip.decompress(data)
    if path.endswith(".zst"):
        if zstandard is None:
            sys.exit(f"modules.py: {path} is zstd-compressed; install python3-zstandard")
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def depends(data):
    # .modinfo holds NUL-separated key=value strings; "depends=" is always there.
    m = re.search(rb"\0depends=([^\0]*)\0", data)
    if not m or not m.group(1):
        return []
    return [canonical(d) for d in m.group(1).decode().split(",") if d]


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    root, dest, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
    index = index_modules(root)
    builtin = builtin_modules(root)
    os.makedirs(dest, exist_ok=True)
    order, seen = [], set()

    def visit(name):
        name = canonical(name)
        if name in seen or (name in builtin and name not in index):
            return
        seen.add(name)
        if name not in index:
            sys.exit(f"modules.py: module {name} not found under {root} (built in? then drop it from the list)")
        data = read_module(index[name])
        for dep in depends(data):
            visit(dep)
        with open(os.path.join(dest, name + ".ko"), "wb") as f:
            f.write(data)
        order.append(name)

    for name in wanted:
        # "?virtio_pci": a module on some kernels, built in on others.
        if name.startswith("?"):
            if canonical(name[1:]) not in index:
                continue
            name = name[1:]
        visit(name)
    print("\n".join(order))


if __name__ == "__main__":
    main()
