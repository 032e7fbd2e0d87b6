#!/usr/bin/env python3
# The kernel as the oracle for resolving a path inside a root: openat2(2)
# with RESOLVE_IN_ROOT (Linux >= 5.6). One JSON query per stdin line,
# {"root": DIR, "path": HOSTPATH, "follow": bool}; one JSON answer per line,
# {"ok": REALPATH} or {"err": "ELOOP" | "ENOENT" | ...}.
import ctypes
import errno
import json
import os
import platform
import sys

SYS_OPENAT2 = 437  # the same number on x86_64 and aarch64 (the generic syscall table)
O_PATH = 0o10000000
O_NOFOLLOW = 0o400000
O_CLOEXEC = 0o2000000
RESOLVE_IN_ROOT = 0x10


class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
if platform.machine() not in ("x86_64", "aarch64"):
    sys.exit(f"openat2 syscall number unknown on {platform.machine()}")

for line in sys.stdin:
    q = json.loads(line)
    dfd = os.open(q["root"], os.O_PATH | os.O_DIRECTORY)
    how = OpenHow(O_PATH | O_CLOEXEC | (0 if q["follow"] else O_NOFOLLOW), 0, RESOLVE_IN_ROOT)
    fd = libc.syscall(ctypes.c_long(SYS_OPENAT2), ctypes.c_int(dfd), ctypes.c_char_p(q["path"].encode()), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        out = {"err": errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))}
    else:
        out = {"ok": os.readlink(f"/proc/self/fd/{fd}")}
        os.close(fd)
    os.close(dfd)
    print(json.dumps(out), flush=True)
