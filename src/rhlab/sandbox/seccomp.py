"""A small seccomp-BPF deny-list for the sandbox, compiled to the raw form `bwrap --seccomp FD` loads.

Namespaces and mount tables are already private; this closes what a job could still reach from inside:
new user namespaces (which would hand it capabilities), mount/ptrace/keyring/bpf/perf/module syscalls,
and the x32 ABI alias on x86_64. Denied calls fail with EPERM (ENOSYS for clone3, so libc falls back to
clone, whose namespace flags are then checked).
"""

from __future__ import annotations

import errno
import platform
import struct

# BPF opcodes
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JSET_K = 0x45
_JGE_K = 0x35
_RET_K = 0x06

_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000

_CLONE_NS_FLAGS = 0x7E020000  # NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET

_DENIED = [
    "ptrace", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "keyctl", "add_key",
    "request_key", "bpf", "perf_event_open", "userfaultfd", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "swapon", "swapoff", "reboot", "process_vm_readv", "process_vm_writev",
    "open_by_handle_at", "name_to_handle_at", "fsopen", "fsconfig", "fsmount", "move_mount", "open_tree",
    "mount_setattr", "syslog", "acct", "sethostname", "setdomainname", "io_uring_setup", "vhangup", "quotactl",
]

_ARCHES = {
    "x86_64": {
        "audit": 0xC000003E,
        "x32_bit": 0x40000000,
        "nr": dict(
            ptrace=101, mount=165, umount2=166, pivot_root=155, chroot=161, unshare=272, setns=308, clone=56,
            clone3=435, keyctl=250, add_key=248, request_key=249, bpf=321, perf_event_open=298,
            userfaultfd=323, kexec_load=246, kexec_file_load=320, init_module=175, finit_module=313,
            delete_module=176, swapon=167, swapoff=168, reboot=169, process_vm_readv=310,
            process_vm_writev=311, open_by_handle_at=304, name_to_handle_at=303, fsopen=430, fsconfig=431,
            fsmount=432, move_mount=429, open_tree=428, mount_setattr=442, syslog=103, acct=163,
            sethostname=170, setdomainname=171, io_uring_setup=425, vhangup=153, quotactl=179,
        ),
    },
    "aarch64": {
        "audit": 0xC00000B7,
        "x32_bit": None,
        "nr": dict(
            ptrace=117, mount=40, umount2=39, pivot_root=41, chroot=51, unshare=97, setns=268, clone=220,
            clone3=435, keyctl=219, add_key=217, request_key=218, bpf=280, perf_event_open=241,
            userfaultfd=282, kexec_load=104, kexec_file_load=294, init_module=105, finit_module=273,
            delete_module=106, swapon=224, swapoff=225, reboot=142, process_vm_readv=270,
            process_vm_writev=271, open_by_handle_at=265, name_to_handle_at=264, fsopen=430, fsconfig=431,
            fsmount=432, move_mount=429, open_tree=428, mount_setattr=442, syslog=116, acct=89,
            sethostname=161, setdomainname=162, io_uring_setup=425, vhangup=58, quotactl=60,
        ),
    },
}


def supported() -> bool:
    return platform.machine() in _ARCHES


def build_filter(machine: str | None = None) -> bytes:
    """Return the filter as packed `struct sock_filter` entries."""
    arch = _ARCHES[machine or platform.machine()]
    nr = arch["nr"]
    prog: list[tuple[int, int, int, int]] = []

    def emit(code: int, jt: int = 0, jf: int = 0, k: int = 0) -> None:
        prog.append((code, jt, jf, k))

    eperm = _RET_ERRNO | errno.EPERM
    # A syscall from a foreign architecture would be looked up in the wrong table: kill it.
    emit(_LD_W_ABS, k=4)
    emit(_JEQ_K, 1, 0, arch["audit"])
    emit(_RET_K, k=_RET_KILL_PROCESS)
    emit(_LD_W_ABS, k=0)
    if arch["x32_bit"]:
        emit(_JGE_K, 0, 1, arch["x32_bit"])
        emit(_RET_K, k=eperm)
    for name in _DENIED:
        emit(_JEQ_K, 0, 1, nr[name])
        emit(_RET_K, k=eperm)
    emit(_JEQ_K, 0, 1, nr["clone3"])
    emit(_RET_K, k=_RET_ERRNO | errno.ENOSYS)
    # clone(flags, ...): refuse namespace flags in the low 32 bits of the first argument.
    emit(_JEQ_K, 0, 3, nr["clone"])
    emit(_LD_W_ABS, k=16)
    emit(_JSET_K, 0, 1, _CLONE_NS_FLAGS)
    emit(_RET_K, k=eperm)
    emit(_RET_K, k=_RET_ALLOW)
    return b"".join(struct.pack("=HBBI", *ins) for ins in prog)
