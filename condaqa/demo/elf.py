"""The RUNPATH of an ELF file made relative to where the file lies, as conda-build leaves a package's binaries.

An interpreter built for one place (pyenv's `~/.pyenv/versions/2.7.18`) finds libpython through
the absolute RUNPATH its build gave it. conda-build makes each such entry `$ORIGIN`-relative, so
the package works wherever it is linked; here the string is rewritten in place, NUL-padded to
its old length, as conda's binary prefix replacement writes a shorter prefix. Only 64-bit ELF
files are read: the platforms condaqa runs on.
"""

from __future__ import annotations

import os
import posixpath
import struct

MAGIC = b"\x7fELF"
_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_STRTAB, _DT_RPATH, _DT_RUNPATH = 0, 5, 15, 29


def is_elf(data: bytes) -> bool:
    return data[:4] == MAGIC


def relative_runpath(data: bytes, where: str, installation: str) -> bytes:
    """`data`, an ELF file at `where` (relative, e.g. "bin/python2.7") in `installation`, with each
    RUNPATH and RPATH entry inside `installation` made relative to the file's folder (`$ORIGIN/../lib`)."""
    if data[4] != 2:
        raise ValueError(f"{where}: not a 64-bit ELF file")
    order = "<" if data[5] == 1 else ">"
    out = bytearray(data)
    for start in _search_paths(data, order):
        end = data.index(b"\0", start)
        old = data[start:end].decode()
        new = ":".join(_relative(entry, posixpath.dirname(where), installation) for entry in old.split(":"))
        if len(new) > len(old):
            raise ValueError(f"{where}: the relative search path {new!r} is longer than {old!r}")
        out[start:end] = new.encode().ljust(end - start, b"\0")
    return bytes(out)


def _relative(entry: str, folder: str, installation: str) -> str:
    """`$ORIGIN`-relative when `entry` is inside `installation`, else as it was."""
    if not entry.startswith("/"):
        return entry
    inside = os.path.relpath(os.path.realpath(entry), installation)
    if inside == ".." or inside.startswith("../"):
        return entry
    up = posixpath.relpath(inside, folder or ".")
    return "$ORIGIN" if up == "." else f"$ORIGIN/{up}"


def _search_paths(data: bytes, order: str) -> list[int]:
    """File offsets of the RUNPATH and RPATH strings of the dynamic section."""
    phoff, = struct.unpack_from(order + "Q", data, 0x20)
    phentsize, phnum = struct.unpack_from(order + "HH", data, 0x36)
    loads, dynamic = [], None
    for i in range(phnum):
        kind, _flags, offset, vaddr, _paddr, filesz = struct.unpack_from(order + "IIQQQQ", data, phoff + i * phentsize)
        if kind == _PT_LOAD:
            loads.append((vaddr, offset, filesz))
        elif kind == _PT_DYNAMIC:
            dynamic = (offset, filesz)
    if dynamic is None:
        return []
    strtab, found = 0, []
    for at in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, value = struct.unpack_from(order + "qQ", data, at)
        if tag == _DT_NULL:
            break
        if tag == _DT_STRTAB:
            strtab = next(offset + value - vaddr for vaddr, offset, size in loads if vaddr <= value < vaddr + size)
        elif tag in (_DT_RPATH, _DT_RUNPATH):
            found.append(value)
    return [strtab + value for value in found]
