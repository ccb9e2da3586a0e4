"""Symbols of a shared object's full symbol table (`.symtab`), local ones included.

The QuickJS binding's own interrupt handler (a C function, static in the binding) is the
one handler that can stay installed while the binding words an exception with the GIL
held: time_limit.py finds it here. The dynamic symbol table that ctypes reads lists only
exported functions; a wheel built without stripping keeps the rest in `.symtab`.
Only 64-bit little-endian ELF is read; anything else has no symbols here.
"""

from __future__ import annotations

import struct
from pathlib import Path

_ELF64_LE = b"\x7fELF\x02\x01"
_SYMTAB = 2  # sh_type of the full symbol table
_SECTION = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr
_SYMBOL = struct.Struct("<IBBHQQ")  # Elf64_Sym
_FUNCTION = 2  # STT_FUNC, the low nibble of st_info


def function_offsets(path: str | Path, names: set[str]) -> dict[str, int]:
    """The value (the offset from the load address) of each function in `names` that
    the object's `.symtab` defines; {} when it has none or is not 64-bit ELF."""
    with open(path, "rb") as image:
        header = image.read(64)
        if len(header) < 64 or not header.startswith(_ELF64_LE):
            return {}
        table_offset = struct.unpack_from("<Q", header, 0x28)[0]
        entry_size, count = struct.unpack_from("<HH", header, 0x3A)
        if entry_size != _SECTION.size or count == 0:
            return {}
        image.seek(table_offset)
        sections = [_SECTION.unpack_from(image.read(entry_size)) for _ in range(count)]
        found: dict[str, int] = {}
        for _, kind, _, _, offset, size, link, _, _, symbol_size in sections:
            if kind != _SYMTAB or symbol_size != _SYMBOL.size or link >= count:
                continue
            image.seek(offset)
            symbols = image.read(size)
            image.seek(sections[link][4])
            strings = image.read(sections[link][5])
            for start in range(0, len(symbols) - symbol_size + 1, symbol_size):
                name_at, info, _, section, value, _ = _SYMBOL.unpack_from(symbols, start)
                if info & 0xF != _FUNCTION or section == 0 or value == 0:
                    continue
                end = strings.find(b"\0", name_at)
                name = strings[name_at:end].decode("ascii", "replace")
                if name in names:
                    found[name] = value
        return found
