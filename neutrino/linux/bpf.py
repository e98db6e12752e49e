"""eBPF without a compiler: the few tc programs the data plane needs, assembled here.

VLAN segments are realised with two direct-action ``cls_bpf`` programs instead of
802.1Q sub-interfaces (kernels built without ``CONFIG_VLAN_8021Q`` cannot make
those; every kernel with eBPF can run these).  Each program is a dozen instructions,
written out below with a tiny assembler, so no clang, libbpf or object file is
involved; its constants (the VLAN id, the ifindex to redirect to) are baked into the
code, and a digest of the code goes into the tc filter's name, which is how the
observer tells a filter in the kernel is exactly the one it would attach.

``load`` is a ctypes wrapper of ``bpf(BPF_PROG_LOAD)``; a program the verifier
refuses raises with the verifier's log (a bug here, never a runtime condition); a
kernel whose ``bpf()`` itself fails (no syscall, not permitted) raises NotSupported.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import platform
import socket
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from neutrino.linux.errors import KernelError, NotSupported

# bpf(2) syscall numbers per architecture (asm-generic: 280).
_SYS_BPF = {"x86_64": 321, "i686": 357, "i386": 357, "aarch64": 280, "armv7l": 386,
            "ppc64le": 361, "ppc64": 361, "s390x": 351, "riscv64": 280, "loongarch64": 280}
BPF_PROG_LOAD = 5
BPF_PROG_TYPE_SCHED_CLS = 3
_OBJ_NAME_LEN = 16
_LOG_SIZE = 1 << 16

# Return codes of a direct-action tc program.
TC_ACT_UNSPEC = -1  # not ours: the next filter, then the normal stack
TC_ACT_SHOT = 2
TC_ACT_REDIRECT = 7

# Helpers (include/uapi/linux/bpf.h, stable numbers).
FN_SKB_VLAN_PUSH = 18
FN_SKB_VLAN_POP = 19
FN_REDIRECT = 23

# Offsets in struct __sk_buff (the program's context), stable uapi.
SKB_VLAN_PRESENT = 20
SKB_VLAN_TCI = 24
SKB_VLAN_PROTO = 28

ETH_P_8021Q = 0x8100
VLAN_VID_MASK = 0x0FFF

# Opcodes: class | size/op | source.
_LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_ALU64_MOV_K = 0xB7
_ALU64_MOV_X = 0xBF
_ALU64_AND_K = 0x57
_JMP_JEQ_K = 0x15
_JMP_JNE_K = 0x55
_JMP_CALL = 0x85
_JMP_EXIT = 0x95

R0, R1, R2, R3, R6 = 0, 1, 2, 3, 6


@dataclass(frozen=True)
class Insn:
    """One eBPF instruction; ``target`` is a label a jump goes to (resolved by
    :func:`assemble` into ``off``)."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    target: str | None = None


Label = str


def mov(dst: int, imm: int) -> Insn:
    return Insn(_ALU64_MOV_K, dst, imm=imm)


def mov_reg(dst: int, src: int) -> Insn:
    return Insn(_ALU64_MOV_X, dst, src)


def load_word(dst: int, src: int, off: int) -> Insn:
    return Insn(_LDX_MEM_W, dst, src, off)


def and_(dst: int, imm: int) -> Insn:
    return Insn(_ALU64_AND_K, dst, imm=imm)


def jeq(dst: int, imm: int, target: Label) -> Insn:
    return Insn(_JMP_JEQ_K, dst, imm=imm, target=target)


def jne(dst: int, imm: int, target: Label) -> Insn:
    return Insn(_JMP_JNE_K, dst, imm=imm, target=target)


def call(helper: int) -> Insn:
    return Insn(_JMP_CALL, imm=helper)


def exit_() -> Insn:
    return Insn(_JMP_EXIT)


def assemble(program: Sequence[Insn | Label]) -> bytes:
    """Instructions and labels (plain strings) -> the bytes the kernel loads."""
    where: dict[str, int] = {}
    insns: list[Insn] = []
    for item in program:
        if isinstance(item, str):
            assert item not in where, f"label {item!r} defined twice"
            where[item] = len(insns)
        else:
            insns.append(item)
    little = sys.byteorder == "little"
    out = bytearray()
    for pc, insn in enumerate(insns):
        off = insn.off
        if insn.target is not None:
            off = where[insn.target] - pc - 1  # relative to the next instruction
        assert 0 <= insn.dst < 11 and 0 <= insn.src < 11 and -2**15 <= off < 2**15
        # the register byte is a bitfield: dst in the low nibble on little-endian hosts
        regs = (insn.src << 4 | insn.dst) if little else (insn.dst << 4 | insn.src)
        out += struct.pack("=BBhi", insn.code, regs, off, insn.imm)
    return bytes(out)


@dataclass(frozen=True)
class Program:
    """A tc classifier program: its code, the kernel's short name for it, and the tc
    filter name it is attached under (``<label>-<digest of the code>``)."""

    code: bytes
    prog_name: str
    label: str

    @property
    def digest(self) -> str:
        return hashlib.sha1(self.code).hexdigest()[:8]

    @property
    def filter_name(self) -> str:
        return f"{self.label}-{self.digest}"


#: filter names of ours start with this (so nobody else's filter is ever taken for ours)
FILTER_PREFIX = "nt-vlan"


def vlan_push(vid: int, to_ifindex: int) -> Program:
    """Bridge -> wire: tag with ``vid`` and send out of ``to_ifindex`` (the physical
    device); a tag that cannot be pushed drops the frame, never sends it untagged."""
    _check(vid, to_ifindex)
    code = assemble([
        mov_reg(R6, R1),
        mov(R2, socket.htons(ETH_P_8021Q)),  # the helper takes the protocol big-endian
        mov(R3, vid),
        call(FN_SKB_VLAN_PUSH),
        jne(R0, 0, "drop"),
        mov(R1, to_ifindex),
        mov(R2, 0),  # egress of the device
        call(FN_REDIRECT),  # TC_ACT_REDIRECT
        exit_(),
        "drop",
        mov(R0, TC_ACT_SHOT),
        exit_(),
    ])
    return Program(code, "nt_vlan_push", f"{FILTER_PREFIX}{vid}-push")


def vlan_pop(vid: int, to_ifindex: int) -> Program:
    """Wire -> bridge: a frame tagged 802.1Q ``vid`` loses its tag and goes out of
    ``to_ifindex`` (the veth end whose peer is in the bridge); anything else is not
    ours.  Before tc ingress the kernel has moved the tag into skb->vlan_tci, in-band
    or offloaded alike."""
    _check(vid, to_ifindex)
    code = assemble([
        mov_reg(R6, R1),
        load_word(R2, R6, SKB_VLAN_PRESENT),
        jeq(R2, 0, "pass"),
        load_word(R2, R6, SKB_VLAN_PROTO),  # 802.1ad (QinQ) outer tags are not ours
        jne(R2, socket.htons(ETH_P_8021Q), "pass"),
        load_word(R2, R6, SKB_VLAN_TCI),
        and_(R2, VLAN_VID_MASK),  # without priority and DEI
        jne(R2, vid, "pass"),
        mov_reg(R1, R6),
        call(FN_SKB_VLAN_POP),
        jne(R0, 0, "drop"),
        mov(R1, to_ifindex),
        mov(R2, 0),
        call(FN_REDIRECT),
        exit_(),
        "drop",
        mov(R0, TC_ACT_SHOT),
        exit_(),
        "pass",
        mov(R0, TC_ACT_UNSPEC),
        exit_(),
    ])
    return Program(code, "nt_vlan_pop", f"{FILTER_PREFIX}{vid}-pop")


def _check(vid: int, ifindex: int) -> None:
    assert 0 < vid < 4095, f"VLAN id {vid} outside 1..4094"
    assert 0 < ifindex < 2**31, f"bad ifindex {ifindex}"


# --- loading ----------------------------------------------------------------------------

class _ProgLoadAttr(ctypes.Structure):
    """The BPF_PROG_LOAD part of ``union bpf_attr`` (the fields we set)."""

    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * _OBJ_NAME_LEN),
        ("prog_ifindex", ctypes.c_uint32),
        ("expected_attach_type", ctypes.c_uint32),
    ]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _sys_bpf() -> int:
    machine = platform.machine()
    number = _SYS_BPF.get(machine)
    if number is None:
        raise NotSupported(f"bpf(): syscall number unknown for {machine}")
    return number


def _prog_load(code: bytes, name: str, log: ctypes.Array[ctypes.c_char] | None) -> int:
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"GPL")  # bpf_redirect & co. are GPL-only
    attr = _ProgLoadAttr()
    attr.prog_type = BPF_PROG_TYPE_SCHED_CLS
    attr.insn_cnt = len(code) // 8
    attr.insns = ctypes.addressof(insns)
    attr.license = ctypes.addressof(license_)
    attr.prog_name = name.encode()[:_OBJ_NAME_LEN - 1]
    if log is not None:
        attr.log_level = 1
        attr.log_size = len(log)
        attr.log_buf = ctypes.addressof(log)
    fd = _libc.syscall(_sys_bpf(), BPF_PROG_LOAD, ctypes.byref(attr), ctypes.sizeof(attr))
    return fd if fd >= 0 else -ctypes.get_errno()


def load(program: Program) -> int:
    """Load ``program`` as a SCHED_CLS program; the caller closes the returned fd
    (once attached, the tc filter holds its own reference)."""
    fd = _prog_load(program.code, program.prog_name, None)
    if fd >= 0:
        return fd
    code = -fd
    if code in (errno.ENOSYS, errno.EPERM):
        raise NotSupported(_unsupported(code))
    # ask again with the verifier's log, which says why
    log = ctypes.create_string_buffer(_LOG_SIZE)
    fd = _prog_load(program.code, program.prog_name, log)
    if fd >= 0:
        return fd
    text = log.value.decode(errors="replace").strip()
    raise KernelError(f"loading BPF program {program.label}", -fd,
                      f"{os.strerror(-fd)}; verifier log:\n{text or '(empty)'}")


def _unsupported(code: int) -> str:
    if code == errno.ENOSYS:
        return "this kernel has no bpf() syscall (CONFIG_BPF_SYSCALL): no VLAN networks"
    return "bpf() not permitted (needs CAP_BPF and CAP_NET_ADMIN): no VLAN networks"


@cache
def unavailable() -> str | None:
    """Why tc programs cannot be loaded here (one line), or None when they can: a
    trivial classifier is loaded and closed to find out."""
    fd = _prog_load(assemble([mov(R0, TC_ACT_UNSPEC), exit_()]), "nt_probe", None)
    if fd >= 0:
        os.close(fd)
        return None
    code = -fd
    if code in (errno.ENOSYS, errno.EPERM):
        return _unsupported(code)
    return f"bpf() failed: {os.strerror(code)}"
