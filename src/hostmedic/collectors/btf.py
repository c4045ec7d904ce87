"""A small, focused reader of kernel BTF (``/sys/kernel/btf/vmlinux``): struct member offsets.

hostmedic's eBPF programs are hand-assembled and read kernel structures with
``bpf_probe_read_kernel``; the offsets of the fields they read differ between kernel builds,
so they are looked up at run time in the kernel's own type information instead of being
compiled in. This module parses only what that needs: the header, the type section (every
kind is *walked* so the type ids line up, but only structs, unions, typedefs, modifiers,
ints, pointers, arrays and enums are interpreted) and the string section.

``parse_btf(data)`` is pure and rejects malformed input with ``ParseError``;
``read_vmlinux_btf()`` does the I/O, ``vmlinux_btf()`` both, once. Anonymous
struct/union members are flattened the way C does it, so
``field("sock_common", "skc_dport")`` finds the port inside
``union { __portpair skc_portpair; struct { __be16 skc_dport; __u16 skc_num; }; }``.
"""

from __future__ import annotations

import functools
import struct
from array import array
from dataclasses import dataclass
from pathlib import Path

from hostmedic.errors import FactUnavailable, ParseError

VMLINUX_BTF = Path("/sys/kernel/btf/vmlinux")
BTF_MAGIC = 0xEB9F

KIND_INT = 1
KIND_PTR = 2
KIND_ARRAY = 3
KIND_STRUCT = 4
KIND_UNION = 5
KIND_ENUM = 6
KIND_FWD = 7
KIND_TYPEDEF = 8
KIND_VOLATILE = 9
KIND_CONST = 10
KIND_RESTRICT = 11
KIND_FUNC = 12
KIND_FUNC_PROTO = 13
KIND_VAR = 14
KIND_DATASEC = 15
KIND_FLOAT = 16
KIND_DECL_TAG = 17
KIND_TYPE_TAG = 18
KIND_ENUM64 = 19

# Bytes that follow the 12-byte common header: (fixed extra, extra per vlen entry).
_KIND_EXTRA: dict[int, tuple[int, int]] = {
    KIND_INT: (4, 0),
    KIND_PTR: (0, 0),
    KIND_ARRAY: (12, 0),
    KIND_STRUCT: (0, 12),
    KIND_UNION: (0, 12),
    KIND_ENUM: (0, 8),
    KIND_FWD: (0, 0),
    KIND_TYPEDEF: (0, 0),
    KIND_VOLATILE: (0, 0),
    KIND_CONST: (0, 0),
    KIND_RESTRICT: (0, 0),
    KIND_FUNC: (0, 0),
    KIND_FUNC_PROTO: (0, 8),
    KIND_VAR: (4, 0),
    KIND_DATASEC: (0, 12),
    KIND_FLOAT: (0, 0),
    KIND_DECL_TAG: (4, 0),
    KIND_TYPE_TAG: (0, 0),
    KIND_ENUM64: (0, 12),
}
_MODIFIERS = frozenset({KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG})
_HEADER = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")
_MEMBER = struct.Struct("<III")
_ARRAY = struct.Struct("<III")
_MAX_DEPTH = 32  # typedef chains / nesting deeper than this mean a cycle in hostile data


@dataclass(frozen=True, slots=True)
class FieldLayout:
    """Where a (possibly nested) struct member lives, relative to the outer struct's start."""

    offset_bytes: int  # for a bitfield: the byte holding its lowest bit
    size_bytes: int  # 0 for a bitfield
    bitfield_bits: int  # 0 for an ordinary (non-bitfield) member
    bit_offset: int  # absolute, from the outer struct's start


class Btf:
    """An index over one parsed BTF blob: type ids → kind, name and position in the data."""

    __slots__ = ("_data", "_info", "_name_off", "_pos", "_str_end", "_str_off", "_type_end")

    def __init__(self, data: bytes) -> None:
        if len(data) < _HEADER.size:
            raise ParseError(f"BTF blob is {len(data)} bytes, shorter than its header")
        magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = _HEADER.unpack_from(
            data
        )
        if magic == 0x9FEB:
            raise ParseError("BTF blob is in the other byte order than this reader expects")
        if magic != BTF_MAGIC:
            raise ParseError(f"not BTF: magic {magic:#06x}")
        if version != 1:
            raise ParseError(f"unsupported BTF version {version}")
        if hdr_len < _HEADER.size or hdr_len > len(data):
            raise ParseError(f"BTF header length {hdr_len} is impossible")
        for name, off, length in (("type", type_off, type_len), ("string", str_off, str_len)):
            if hdr_len + off + length > len(data):
                raise ParseError(f"BTF {name} section runs past the end of the blob")
        self._data = data
        self._str_off = hdr_len + str_off
        self._str_end = self._str_off + str_len
        self._type_end = hdr_len + type_off + type_len
        # Index 0 is the implicit "void" type.
        self._pos = array("Q", [0])
        self._info = array("I", [0])
        self._name_off = array("I", [0])
        self._walk(hdr_len + type_off)

    def _walk(self, pos: int) -> None:
        data, end = self._data, self._type_end
        unpack = _TYPE.unpack_from
        extra = _KIND_EXTRA
        append_pos, append_info, append_name = (
            self._pos.append,
            self._info.append,
            self._name_off.append,
        )
        while pos < end:
            if pos + 12 > end:
                raise ParseError(f"truncated BTF type at byte {pos}")
            name_off, info, _size = unpack(data, pos)
            kind = (info >> 24) & 0x1F
            sizes = extra.get(kind)
            if sizes is None:
                raise ParseError(f"unknown BTF kind {kind} at byte {pos}")
            append_pos(pos)
            append_info(info)
            append_name(name_off)
            pos += 12 + sizes[0] + sizes[1] * (info & 0xFFFF)
        if pos != end:
            raise ParseError("last BTF type runs past the end of the type section")

    # -- small accessors -------------------------------------------------------------------

    @property
    def type_count(self) -> int:
        """Number of types, not counting the implicit void (id 0)."""
        return len(self._pos) - 1

    def kind(self, type_id: int) -> int:
        """The BTF kind of a type id (``KIND_*``); 0 for void."""
        self._check_id(type_id)
        return (self._info[type_id] >> 24) & 0x1F

    def name(self, type_id: int) -> str:
        """The type's name, '' for anonymous types and void."""
        self._check_id(type_id)
        return self._string(self._name_off[type_id])

    def _check_id(self, type_id: int) -> None:
        if not 0 <= type_id < len(self._pos):
            raise ParseError(f"BTF refers to type id {type_id}, only {self.type_count} exist")

    def _string(self, off: int) -> str:
        start = self._str_off + off
        if off < 0 or start >= self._str_end:
            raise ParseError(f"BTF string offset {off} outside the string section")
        nul = self._data.find(b"\0", start, self._str_end)
        if nul < 0:
            raise ParseError(f"BTF string at offset {off} is not NUL-terminated")
        return self._data[start:nul].decode("utf-8", "replace")

    def _string_offsets(self, text: str) -> set[int]:
        """All string-section offsets holding exactly ``text`` (BTF dedups, but don't rely)."""
        needle = b"\0" + text.encode() + b"\0"
        found: set[int] = set()
        at = self._data.find(needle, self._str_off, self._str_end)
        while at >= 0:
            found.add(at + 1 - self._str_off)
            at = self._data.find(needle, at + 1, self._str_end)
        return found

    def _sizefield(self, type_id: int) -> int:
        return int(_TYPE.unpack_from(self._data, self._pos[type_id])[2])

    # -- type queries ----------------------------------------------------------------------

    def find(self, name: str, kinds: tuple[int, ...] = (KIND_STRUCT, KIND_UNION)) -> int:
        """Id of the first complete type called ``name`` of one of ``kinds``; KeyError if none."""
        wanted = self._string_offsets(name)
        if wanted:
            for type_id in range(1, len(self._pos)):
                if self._name_off[type_id] in wanted and self.kind(type_id) in kinds:
                    return type_id
        raise KeyError(name)

    def strip(self, type_id: int) -> int:
        """Follow typedefs and const/volatile/restrict/type-tag modifiers to the real type."""
        for _ in range(_MAX_DEPTH):
            if self.kind(type_id) not in _MODIFIERS:
                return type_id
            type_id = self._sizefield(type_id)
        raise ParseError(f"BTF type chain deeper than {_MAX_DEPTH} (a cycle?)")

    def size_of(self, type_id: int, _depth: int = 0) -> int:
        """Size in bytes of a type, as the C compiler laid it out."""
        if _depth > _MAX_DEPTH:
            raise ParseError("BTF array nesting too deep (a cycle?)")
        type_id = self.strip(type_id)
        kind = self.kind(type_id)
        if kind in (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_FLOAT):
            return self._sizefield(type_id)
        if kind == KIND_PTR:
            return 8
        if kind == KIND_ARRAY:
            elem, _index, nelems = _ARRAY.unpack_from(self._data, self._pos[type_id] + 12)
            return int(nelems) * self.size_of(elem, _depth + 1)
        raise ParseError(f"BTF type {type_id} (kind {kind}) has no size")

    def members(self, type_id: int) -> list[tuple[str, int, int, int]]:
        """Direct members of a struct/union: (name, type id, bit offset, bitfield bits)."""
        type_id = self.strip(type_id)
        kind = self.kind(type_id)
        if kind not in (KIND_STRUCT, KIND_UNION):
            raise ParseError(f"BTF type {type_id} is kind {kind}, not a struct or union")
        info = self._info[type_id]
        kind_flag = info >> 31
        pos = self._pos[type_id] + 12
        out = []
        for _ in range(info & 0xFFFF):
            name_off, mtype, offset = _MEMBER.unpack_from(self._data, pos)
            pos += 12
            self._check_id(mtype)
            if kind_flag:
                out.append((self._string(name_off), mtype, offset & 0xFFFFFF, offset >> 24))
            else:
                out.append((self._string(name_off), mtype, offset, 0))
        return out

    def _lookup_member(self, type_id: int, name: str, depth: int) -> tuple[int, int, int] | None:
        """(type id, bit offset, bitfield bits) of ``name``, searching anonymous members too."""
        if depth > _MAX_DEPTH:
            raise ParseError("BTF anonymous member nesting too deep (a cycle?)")
        for mname, mtype, bit_off, bits in self.members(type_id):
            if mname == name:
                return mtype, bit_off, bits
            if not mname and self.kind(self.strip(mtype)) in (KIND_STRUCT, KIND_UNION):
                inner = self._lookup_member(mtype, name, depth + 1)
                if inner is not None:
                    return inner[0], bit_off + inner[1], inner[2]
        return None

    def field(self, struct_name: str, path: str) -> FieldLayout:
        """Layout of ``path`` (dotted, e.g. ``"ns.inum"``) inside ``struct struct_name``.

        Raises KeyError when the struct or a member is missing (an unexpected kernel layout)
        and ParseError when the BTF data itself is inconsistent.
        """
        type_id = self.find(struct_name)
        bit_offset = 0
        bits = 0
        for part in path.split("."):
            found = self._lookup_member(type_id, part, 0)
            if found is None:
                raise KeyError(f"{struct_name}.{path}: no member {part!r}")
            type_id, member_bits, bits = found
            bit_offset += member_bits
        if bits == 0 and bit_offset % 8:
            raise ParseError(f"{struct_name}.{path} is at bit {bit_offset}, not byte aligned")
        size = self.size_of(type_id) if not bits else 0
        return FieldLayout(bit_offset // 8, size, bits, bit_offset)


def parse_btf(data: bytes) -> Btf:
    """Index a raw BTF blob (e.g. the bytes of ``/sys/kernel/btf/vmlinux``); pure."""
    return Btf(data)


def read_vmlinux_btf(path: Path = VMLINUX_BTF) -> bytes:
    """Read the running kernel's BTF; FactUnavailable when the kernel does not expose it."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FactUnavailable(
            f"the kernel exposes no BTF type information ({path} is missing; it needs "
            "CONFIG_DEBUG_INFO_BTF=y), so kernel structure offsets cannot be looked up"
        ) from None
    except PermissionError:
        raise FactUnavailable(f"cannot read {path}: permission denied") from None


@functools.cache
def vmlinux_btf() -> Btf:
    """The running kernel's BTF, parsed once (0.1 s, 7 MiB) for every program loaded while
    the monitor starts; ``vmlinux_btf.cache_clear()`` releases it once they are loaded.
    FactUnavailable (not cached) when the kernel exposes none."""
    return parse_btf(read_vmlinux_btf())
