"""Minimal bpf(2) access from pure Python (ctypes), plus a tiny eBPF instruction assembler.

hostmedic cannot rely on bcc/libbpf or kernel headers being installed, and its BPF programs
are a few dozen instructions, so it loads them itself: this module wraps the handful of
bpf(2) commands it needs (map create/lookup/update/delete/get-next-key/batch
lookup-and-delete, BTF load, program load with the verifier log kept on failure, raw
tracepoint attach, link create, iterator instances and their output, object info) and
encodes instructions (``Insn``/``assemble``) with symbolic jump labels. Failures raise
:class:`BpfError`, an ``OSError`` carrying errno and, for program loads, the verifier's
log; callers translate it into ``FactUnavailable``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
from dataclasses import dataclass

# bpf(2) syscall numbers by machine; it has no libc wrapper.
_SYSCALL_NR = {
    "x86_64": 321,
    "aarch64": 280,
    "riscv64": 280,
    "loongarch64": 280,
    "s390x": 351,
    "ppc64le": 361,
    "ppc64": 361,
    "i686": 357,
    "armv7l": 386,
}

# Commands (enum bpf_cmd).
MAP_CREATE = 0
MAP_LOOKUP_ELEM = 1
MAP_UPDATE_ELEM = 2
MAP_DELETE_ELEM = 3
MAP_GET_NEXT_KEY = 4
PROG_LOAD = 5
PROG_GET_FD_BY_ID = 13
OBJ_GET_INFO_BY_FD = 15
RAW_TRACEPOINT_OPEN = 17
BTF_LOAD = 18
MAP_LOOKUP_AND_DELETE_BATCH = 25
LINK_CREATE = 28
ITER_CREATE = 33

MAP_TYPE_HASH = 1
MAP_TYPE_ARRAY = 2
MAP_TYPE_LRU_HASH = 9
MAP_TYPE_SK_STORAGE = 24
MAP_F_NO_PREALLOC = 1
PROG_TYPE_CGROUP_SKB = 8
PROG_TYPE_CGROUP_SOCK = 9
PROG_TYPE_RAW_TRACEPOINT = 17
PROG_TYPE_TRACING = 26
ATTACH_CGROUP_INET_INGRESS = 0
ATTACH_CGROUP_INET_EGRESS = 1
ATTACH_TRACE_ITER = 28
ATTACH_CGROUP_INET_SOCK_RELEASE = 34

# Helper function ids (enum bpf_func_id).
FN_MAP_LOOKUP_ELEM = 1
FN_MAP_UPDATE_ELEM = 2
FN_MAP_DELETE_ELEM = 3
FN_PROBE_READ = 4
FN_KTIME_GET_NS = 5
FN_GET_CURRENT_PID_TGID = 14
FN_GET_CURRENT_COMM = 16
FN_GET_SOCKET_COOKIE = 46
FN_SK_STORAGE_GET = 107
FN_PROBE_READ_KERNEL = 113
FN_GET_NETNS_COOKIE = 122
FN_SEQ_WRITE = 127
FN_SKC_TO_TCP_SOCK = 137
SK_STORAGE_GET_F_CREATE = 1

_ATTR_SIZE = 128  # larger than every attr layout used here; the kernel wants the tail zeroed
_LOG_SIZE = 1 << 20


class BpfError(OSError):
    """A bpf(2) command failed; ``log`` holds the verifier's output for program loads."""

    def __init__(self, err: int, what: str, log: str = "") -> None:
        super().__init__(err, f"{what}: {os.strerror(err)}")
        self.log = log


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


_LIBC = _libc()


def syscall_number() -> int:
    """The bpf(2) syscall number for this machine; BpfError(ENOSYS) when unknown."""
    nr = _SYSCALL_NR.get(platform.machine())
    if nr is None:
        raise BpfError(errno.ENOSYS, f"bpf(2) syscall number unknown on {platform.machine()}")
    return nr


def bpf(cmd: int, attr: ctypes.Array[ctypes.c_char], what: str) -> int:
    """Run one bpf(2) command on a prepared attr buffer; return the result or raise BpfError."""
    ret = _LIBC.syscall(
        ctypes.c_long(syscall_number()),
        ctypes.c_long(cmd),
        attr,
        ctypes.c_uint(len(attr)),
    )
    if ret < 0:
        raise BpfError(ctypes.get_errno(), what)
    return int(ret)


def _attr(fmt: str, *values: int | bytes) -> ctypes.Array[ctypes.c_char]:
    buf = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into(fmt, buf, 0, *values)
    return buf


def _addr(buf: ctypes.Array[ctypes.c_char] | None) -> int:
    return 0 if buf is None else ctypes.addressof(buf)


# -- maps ----------------------------------------------------------------------------------


def map_create(
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    name: str,
    *,
    flags: int = 0,
    btf: tuple[int, int, int] = (0, 0, 0),
) -> int:
    """Create a map and return its fd (the caller owns and must close it). ``btf`` is
    (BTF fd, key type id, value type id), which some map types require (socket storage)."""
    attr = _attr(
        "=IIIIIII16sIIII",
        map_type, key_size, value_size, max_entries, flags, 0, 0, name.encode()[:15], 0, *btf,
    )  # fmt: skip
    return bpf(MAP_CREATE, attr, f"creating BPF map {name}")


def btf_load(blob: bytes) -> int:
    """Load a BTF blob (type information some maps need) and return its fd."""
    data = ctypes.create_string_buffer(blob, len(blob))
    attr = _attr("=QQIII", _addr(data), 0, len(blob), 0, 0)
    return bpf(BTF_LOAD, attr, "loading BTF type information")


def u64_array_btf(nelems: int) -> tuple[bytes, int, int]:
    """A minimal BTF blob describing an ``int`` key and a ``u64[nelems]`` value: the blob,
    the key's and the value's type ids (for :func:`map_create`'s ``btf``). Pure."""
    strings = b"\0int\0u64\0"
    kind_int, kind_array, int_signed = 1, 3, 1
    types = struct.pack(
        "=IIII" "IIII" "IIIIII",
        1, kind_int << 24, 4, int_signed << 24 | 32,  # 1: int
        5, kind_int << 24, 8, 64,  # 2: u64
        0, kind_array << 24, 0, 2, 1, nelems,  # 3: u64[nelems]
    )  # fmt: skip
    header = struct.pack("=HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings, 1, 3


def sk_storage_create(value_size: int, name: str) -> tuple[int, int]:
    """A socket storage map (a slot of ``value_size`` bytes, a multiple of 8, on each
    socket a program asks for) and the BTF it needs: (BTF fd, map fd), both the caller's
    to close."""
    blob, key_type, value_type = u64_array_btf(value_size // 8)
    btf_fd = btf_load(blob)
    try:
        map_fd = map_create(
            MAP_TYPE_SK_STORAGE, 4, value_size, 0, name,
            flags=MAP_F_NO_PREALLOC, btf=(btf_fd, key_type, value_type),
        )  # fmt: skip
    except BaseException:
        os.close(btf_fd)
        raise
    return btf_fd, map_fd


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    """Value stored under ``key``, or None when the key is absent."""
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value_size)
    try:
        bpf(MAP_LOOKUP_ELEM, _attr("=I4xQQQ", fd, _addr(k), _addr(v), 0), "map lookup")
    except BpfError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    return v.raw


def map_update(fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    """Insert or replace ``key`` (flags: 0 = any, 1 = only new, 2 = only existing)."""
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value, len(value))
    bpf(MAP_UPDATE_ELEM, _attr("=I4xQQQ", fd, _addr(k), _addr(v), flags), "map update")


def map_delete(fd: int, key: bytes) -> bool:
    """Delete ``key``; False when it was not there (already gone or evicted)."""
    k = ctypes.create_string_buffer(key, len(key))
    try:
        bpf(MAP_DELETE_ELEM, _attr("=I4xQ", fd, _addr(k)), "map delete")
    except BpfError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise
    return True


def map_next_key(fd: int, key: bytes | None, key_size: int) -> bytes | None:
    """Key after ``key`` (the first key when None); None at the end of the map."""
    k = None if key is None else ctypes.create_string_buffer(key, len(key))
    nxt = ctypes.create_string_buffer(key_size)
    try:
        bpf(MAP_GET_NEXT_KEY, _attr("=I4xQQ", fd, _addr(k), _addr(nxt)), "map get-next-key")
    except BpfError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    return nxt.raw


def map_pop_batch(
    fd: int, key_size: int, value_size: int, batch: int = 1024
) -> list[tuple[bytes, bytes]]:
    """Look up and delete every entry with BPF_MAP_LOOKUP_AND_DELETE_BATCH (kernel 5.6+).

    Raises BpfError(EINVAL/ENOTSUPP...) when the kernel or map type has no batch support, so
    the caller can fall back to :func:`map_pop_iter`.
    """
    out: list[tuple[bytes, bytes]] = []
    keys = ctypes.create_string_buffer(key_size * batch)
    values = ctypes.create_string_buffer(value_size * batch)
    # For hash maps the batch cursor is a 32-bit bucket index; 8 bytes leaves room.
    cursor_in = ctypes.create_string_buffer(8)
    cursor_out = ctypes.create_string_buffer(8)
    first = True
    for _ in range(1 << 20):  # bounded: each round empties at least one bucket
        attr = _attr(
            "=QQQQIIQQ",
            0 if first else _addr(cursor_in),
            _addr(cursor_out),
            _addr(keys),
            _addr(values),
            batch,
            fd,
            0,
            0,
        )
        done = False
        try:
            bpf(MAP_LOOKUP_AND_DELETE_BATCH, attr, "map batch lookup-and-delete")
        except BpfError as exc:
            if exc.errno != errno.ENOENT:
                raise
            done = True  # ENOENT: end of map; ``count`` still says how many were returned
        (count,) = struct.unpack_from("=I", attr, 32)
        kraw, vraw = keys.raw, values.raw
        for i in range(count):
            out.append(
                (
                    kraw[i * key_size : (i + 1) * key_size],
                    vraw[i * value_size : (i + 1) * value_size],
                )
            )
        if done:
            return out
        ctypes.memmove(cursor_in, cursor_out, 8)
        first = False
    return out


def map_pop_iter(fd: int, key_size: int, value_size: int) -> list[tuple[bytes, bytes]]:
    """Read and delete every entry one by one (the pre-5.6 fallback of map_pop_batch)."""
    keys: list[bytes] = []
    key = map_next_key(fd, None, key_size)
    while key is not None and len(keys) < 1 << 22:
        keys.append(key)
        key = map_next_key(fd, key, key_size)
    out = []
    for key in keys:
        value = map_lookup(fd, key, value_size)
        if value is not None and map_delete(fd, key):
            out.append((key, value))
    return out


class MapDrain:
    """Pops every entry of one map each call: batched where the kernel can (5.6+), else
    one entry at a time (the first refusal of the batch command is remembered)."""

    def __init__(self, fd: int, key_size: int, value_size: int) -> None:
        self.fd, self.key_size, self.value_size = fd, key_size, value_size
        self._batch = True

    def pop(self) -> list[tuple[bytes, bytes]]:
        """Every ``(key, value)`` in the map, deleted as it is read."""
        if self._batch:
            try:
                return map_pop_batch(self.fd, self.key_size, self.value_size)
            except BpfError as exc:
                if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, 524):  # 524: ENOTSUPP
                    raise
                self._batch = False
        return map_pop_iter(self.fd, self.key_size, self.value_size)


# -- programs ------------------------------------------------------------------------------


def prog_load(
    prog_type: int,
    insns: bytes,
    name: str,
    license_: str = "GPL",
    *,
    attach_type: int = 0,
    attach_btf_id: int = 0,
) -> int:
    """Load a program and return its fd; on failure BpfError.log holds the verifier log.
    ``attach_type`` (expected_attach_type) and ``attach_btf_id`` (a kernel function's
    vmlinux BTF id) are for the program types that need them.

    The first attempt asks for no log (logging slows the verifier, and a too-small buffer
    fails the load on new kernels); only a failed load is repeated with the log enabled.
    """
    lic = ctypes.create_string_buffer(license_.encode())
    code = ctypes.create_string_buffer(insns, len(insns))
    log = ctypes.create_string_buffer(_LOG_SIZE)

    def attempt(log_level: int) -> int:
        attr = _attr(
            "=IIQQIIQII16sII36xI",
            prog_type,
            len(insns) // 8,
            _addr(code),
            _addr(lic),
            log_level,
            _LOG_SIZE if log_level else 0,
            _addr(log) if log_level else 0,
            0,
            0,
            name.encode()[:15],
            0,
            attach_type,
            attach_btf_id,
        )
        return bpf(PROG_LOAD, attr, f"loading BPF program {name}")

    try:
        return attempt(0)
    except BpfError as first:
        if first.errno == errno.EPERM:
            raise  # a permission problem: the verifier never ran, there is no log
        try:
            fd = attempt(1)
        except BpfError as exc:
            text = log.value.decode("utf-8", "replace")
            raise BpfError(exc.errno or errno.EINVAL, f"loading BPF program {name}", text) from None
        return fd  # succeeded on retry (a transient failure): keep it


def raw_tracepoint_open(name: str, prog_fd: int) -> int:
    """Attach a raw-tracepoint program by tracepoint name (no tracefs needed); returns a
    link fd: the program stays attached exactly as long as that fd is open."""
    tp = ctypes.create_string_buffer(name.encode())
    return bpf(RAW_TRACEPOINT_OPEN, _attr("=QI", _addr(tp), prog_fd), f"attaching to {name}")


def link_create(
    prog_fd: int, target_fd: int, attach_type: int, what: str, *, iter_map_fd: int = -1
) -> int:
    """Attach a program with BPF_LINK_CREATE (e.g. a cgroup program to a cgroup directory
    fd) and return the link fd: the attachment lives exactly as long as that fd, so a
    killed process never leaves the program attached. Cgroup links always coexist with
    other programs on the same hook (BPF_F_ALLOW_MULTI semantics). ``iter_map_fd``: the
    map a map-element iterator program walks."""
    if iter_map_fd < 0:
        return bpf(LINK_CREATE, _attr("=IIII", prog_fd, target_fd, attach_type, 0), what)
    info = ctypes.create_string_buffer(struct.pack("=I", iter_map_fd), 8)
    attr = _attr("=IIIIQI", prog_fd, target_fd, attach_type, 0, _addr(info), 8)
    return bpf(LINK_CREATE, attr, what)


def iter_create(link_fd: int) -> int:
    """A new read-once instance of an iterator link (BPF_ITER_CREATE): an fd whose reads
    run the program over the objects it walks. Iterators over a namespace's objects walk
    the namespace of the thread that creates the instance."""
    return bpf(ITER_CREATE, _attr("=II", link_fd, 0), "creating a BPF iterator")


def iter_read(iter_fd: int, limit: int) -> bytes:
    """Everything an iterator instance prints (at most ``limit`` bytes), then close it."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size < limit:
            chunk = os.read(iter_fd, min(1 << 16, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(iter_fd)
    return b"".join(chunks)


def iter_run(link_fd: int) -> None:
    """Run an iterator program once over everything it walks (its output is discarded)."""
    iter_read(iter_create(link_fd), 1 << 20)  # bounded: the programs here print nothing


def object_id(fd: int) -> int:
    """Kernel-wide id of a BPF program or map fd (``bpf_prog_info.id`` / ``bpf_map_info.id``)."""
    info = ctypes.create_string_buffer(16)  # type (u32) + id (u32) are the first fields
    attr = _attr("=IIQ", fd, len(info), _addr(info))
    bpf(OBJ_GET_INFO_BY_FD, attr, "reading BPF object info")
    return int(struct.unpack_from("=II", info)[1])


def prog_exists(prog_id: int) -> bool:
    """Whether a program with this kernel-wide id is still loaded (BPF_PROG_GET_FD_BY_ID)."""
    try:
        fd = bpf(PROG_GET_FD_BY_ID, _attr("=I", prog_id), "looking up BPF program by id")
    except BpfError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise
    os.close(fd)
    return True


# -- instructions --------------------------------------------------------------------------

# Instruction classes, sizes, modes, sources and operations (linux/bpf_common.h, bpf.h).
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = range(8)
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
IMM, MEM, ATOMIC = 0x00, 0x60, 0xC0
_FETCH = 0x01
K, X = 0x00, 0x08
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70
MOV = 0xB0
JA, JEQ, JGT, JGE, JSET, JNE = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50
JLE = 0xB0
CALL, EXIT = 0x80, 0x90
PSEUDO_MAP_FD = 1
PSEUDO_MAP_VALUE = 2
END, TO_BE = 0xD0, 0x08
R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)
FP = R10
_SIZE = {1: B, 2: H, 4: W, 8: DW}
_INSN = struct.Struct("<BBhi")


@dataclass(frozen=True, slots=True)
class Insn:
    """One 8-byte eBPF instruction; ``target`` names a Label for jumps (resolved later)."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    target: str | None = None


@dataclass(frozen=True, slots=True)
class Label:
    """A jump target between instructions."""

    name: str


def mov_imm(dst: int, imm: int) -> Insn:
    """``dst = imm`` (64-bit)."""
    return Insn(ALU64 | MOV | K, dst, 0, 0, imm)


def mov_reg(dst: int, src: int) -> Insn:
    """``dst = src`` (64-bit)."""
    return Insn(ALU64 | MOV | X, dst, src)


def alu_imm(op: int, dst: int, imm: int) -> Insn:
    """``dst op= imm`` (64-bit), e.g. ``alu_imm(ADD, R1, -16)``."""
    return Insn(ALU64 | op | K, dst, 0, 0, imm)


def ldx(size: int, dst: int, src: int, off: int) -> Insn:
    """``dst = *(uN *)(src + off)`` with size in bytes."""
    return Insn(LDX | MEM | _SIZE[size], dst, src, off)


def stx(size: int, dst: int, off: int, src: int) -> Insn:
    """``*(uN *)(dst + off) = src`` with size in bytes."""
    return Insn(STX | MEM | _SIZE[size], dst, src, off)


def st_imm(size: int, dst: int, off: int, imm: int) -> Insn:
    """``*(uN *)(dst + off) = imm`` with size in bytes."""
    return Insn(ST | MEM | _SIZE[size], dst, 0, off, imm)


def atomic_add(size: int, dst: int, off: int, src: int) -> Insn:
    """``*(uN *)(dst + off) += src`` atomically (BPF_ATOMIC | BPF_ADD; 4 or 8 bytes)."""
    return Insn(STX | ATOMIC | _SIZE[size], dst, src, off, ADD)


def atomic_xchg(size: int, dst: int, off: int, src: int) -> Insn:
    """``src = xchg(*(uN *)(dst + off), src)``: read and replace atomically (BPF_XCHG)."""
    return Insn(STX | ATOMIC | _SIZE[size], dst, src, off, 0xE0 | _FETCH)


def atomic_cmpxchg(size: int, dst: int, off: int, src: int) -> Insn:
    """``r0 = cmpxchg(*(uN *)(dst + off), r0, src)``: store ``src`` if the memory holds
    r0; r0 gets what it held either way (BPF_CMPXCHG)."""
    return Insn(STX | ATOMIC | _SIZE[size], dst, src, off, 0xF0 | _FETCH)


def jmp_reg(op: int, dst: int, src: int, target: str) -> Insn:
    """``if dst op src goto target`` (64-bit compare of two registers)."""
    return Insn(JMP | op | X, dst, src, 0, 0, target)


def jmp_imm(op: int, dst: int, imm: int, target: str, *, wide: bool = True) -> Insn:
    """``if dst op imm goto target``; ``wide=False`` compares the low 32 bits only."""
    return Insn((JMP if wide else JMP32) | op | K, dst, 0, 0, imm, target)


def ja(target: str) -> Insn:
    """Unconditional ``goto target``."""
    return Insn(JMP | JA, target=target)


def call(helper: int) -> Insn:
    """Call a BPF helper by id; arguments in r1..r5, result in r0."""
    return Insn(JMP | CALL, imm=helper)


def exit_() -> Insn:
    """Return r0."""
    return Insn(JMP | EXIT)


def ld_imm64(dst: int, value: int) -> list[Insn]:
    """``dst = value`` for a full 64-bit constant (a two-slot ld_imm64)."""
    low, high = value & 0xFFFFFFFF, (value >> 32) & 0xFFFFFFFF
    as_s32 = [v - (1 << 32) if v >= 1 << 31 else v for v in (low, high)]
    return [Insn(LD | IMM | DW, dst, 0, 0, as_s32[0]), Insn(0, imm=as_s32[1])]


def ld_map_fd(dst: int, map_fd: int) -> list[Insn]:
    """``dst = map`` (a two-slot ld_imm64 the kernel rewrites to the map pointer)."""
    return [Insn(LD | IMM | DW, dst, PSEUDO_MAP_FD, 0, map_fd), Insn(0)]


def ld_map_value(dst: int, map_fd: int, offset: int = 0) -> list[Insn]:
    """``dst = &value[offset]`` of an array map's only element (direct value access: no
    helper call)."""
    return [Insn(LD | IMM | DW, dst, PSEUDO_MAP_VALUE, 0, map_fd), Insn(0, imm=offset)]


def to_be(dst: int, bits: int) -> Insn:
    """``dst = htobe<bits>(dst)`` (16, 32 or 64): host to network byte order."""
    return Insn(ALU | END | TO_BE, dst, 0, 0, bits)


def assemble(program: list[Insn | Label]) -> bytes:
    """Resolve labels into relative jump offsets and encode the program."""
    where: dict[str, int] = {}
    slot = 0
    for item in program:
        if isinstance(item, Label):
            if item.name in where:
                raise ValueError(f"label {item.name!r} defined twice")
            where[item.name] = slot
        else:
            slot += 1
    out = bytearray()
    slot = 0
    for item in program:
        if isinstance(item, Label):
            continue
        off = item.off
        if item.target is not None:
            if item.target not in where:
                raise ValueError(f"jump to undefined label {item.target!r}")
            off = where[item.target] - (slot + 1)
        out += _INSN.pack(item.code, (item.src << 4) | item.dst, off, item.imm)
        slot += 1
    return bytes(out)
