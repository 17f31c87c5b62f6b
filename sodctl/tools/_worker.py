"""A warm sandbox worker: ``python -m sodctl.tools._worker SLOT MODULES`` (SLOT only names it).

The worker imports the common modules once, then serves requests from its
parent over a pipe (4-byte big-endian length + JSON). Each request runs in a
fresh child forked from the warm worker, so imports are free and no state
leaks from one call to the next. The child, before running the code:

* starts a new session (its own process group, killed whole at the end);
* when the OS allows (root or CAP_SYS_ADMIN): enters new network and mount
  namespaces -> no network at all (only a down loopback), and private tmpfs
  mounts on /tmp, /var/tmp and /dev/shm, so nothing it writes there survives it (a
  Python installation under one of them, a virtualenv in /tmp, is bound back into it);
* when running as root: drops to a uid of its own (one per live worker on the
  machine, claimed with a lock file, so concurrent executors never share one), so it
  cannot signal the worker, read other processes' environments or write
  outside world-writable places; after the call every process of that uid is
  killed, which also catches descendants that left the process group;
* sets resource limits: address space, CPU seconds, processes, file size, open
  files, no core dumps;
* works in a fresh empty directory, with a scrubbed environment.

Without root, the namespaces and the uid switch are skipped (the reply says so
through ``network_isolated``); limits, process groups and fresh directories remain.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib
import json
import os
import resource
import selectors
import signal
import struct
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
SANDBOX_UID_BASE = 61000
SANDBOX_UID_COUNT = 4096
UID_LOCK_DIR = "/tmp/sodctl-sandbox-uids"
SCRUBBED_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONIOENCODING": "utf-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}

_libc = ctypes.CDLL(None, use_errno=True)


# --- framing -------------------------------------------------------------------------------


def read_msg(fd: int) -> dict | None:
    head = _read_exact(fd, 4)
    if head is None:
        return None
    body = _read_exact(fd, struct.unpack(">I", head)[0])
    return None if body is None else json.loads(body)


def write_msg(fd: int, msg: dict) -> None:
    body = json.dumps(msg).encode()
    data = struct.pack(">I", len(body)) + body
    while data:
        data = data[os.write(fd, data) :]


def _read_exact(fd: int, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


# --- the child -------------------------------------------------------------------------------


def _enter_network_namespace() -> bool:
    """Put the whole worker (and so every child) in a new, empty network namespace."""
    return _libc.unshare(CLONE_NEWNET) == 0


MS_BIND = 0x1000
PR_SET_CHILD_SUBREAPER = 36


def _python_dirs() -> set[str]:
    """Where the interpreter and its packages live: what a call must still see to import."""
    return {sys.prefix, sys.base_prefix, sys.exec_prefix, *(p for p in sys.path if p)}


def _cover(path: str, options: bytes, keep: set[str]) -> None:
    """Mount a fresh tmpfs on ``path``, binding back the top-level directories under it
    that hold one of ``keep`` (the rest of ``path`` goes out of sight; nothing if the mount
    fails). Needs a mount namespace of this process's own."""
    tops = sorted(
        {
            os.path.join(path, os.path.relpath(p, path).split(os.sep)[0])
            for p in keep
            if p.startswith(path + "/")
        }
    )
    fds = {top: os.open(top, os.O_PATH) for top in tops if os.path.isdir(top)}
    try:
        if _libc.mount(b"tmpfs", path.encode(), b"tmpfs", 0, options) != 0:
            return
        for top, fd in fds.items():
            os.mkdir(top, 0o755)
            _libc.mount(f"/proc/self/fd/{fd}".encode(), top.encode(), None, MS_BIND | MS_REC, None)
    finally:
        for fd in fds.values():
            os.close(fd)


def _share_python_install() -> None:
    """Let the sandbox uid read the Python installation when it lives in root's private home.

    In a mount namespace of the worker's own, a small tmpfs (mode 0755) covers /root and
    the directories holding the interpreter and its packages are bound back into it; the
    rest of /root stays out of sight.
    """
    keep = _python_dirs()
    if not any(p.startswith("/root/") for p in keep) or _libc.unshare(CLONE_NEWNS) != 0:
        return
    _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None)
    _cover("/root", b"size=1m,mode=0755", keep)


def _enter_mount_namespace() -> bool:
    """A private mount namespace with fresh tmpfs on the world-writable places; False if not
    permitted. A Python installation under one of them (a virtualenv in /tmp) is bound back,
    or a call could not import what the worker did not preload."""
    if _libc.unshare(CLONE_NEWNS) != 0:
        return False
    if _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    keep = _python_dirs()
    for path in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(path):
            _cover(path, b"size=256m,mode=1777", keep)
    return True


@dataclass
class Spare:
    """A child forked ahead of time from the warm worker, waiting for its one request."""

    pid: int
    pidfd: int
    req_w: int
    out_r: int
    err_r: int
    status_r: int


def spawn_spare(uid: int) -> Spare:
    """Fork the next child now, so that a request finds one ready (the fork of a process
    holding numpy and sympy costs milliseconds). It isolates itself, then blocks on its
    request pipe."""
    req_r, req_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    st_r, st_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (req_w, out_r, err_r, st_r):
                os.close(fd)
            _child_main(uid, req_r, out_w, err_w, st_w)
        finally:
            os._exit(125)
    for fd in (req_r, out_w, err_w, st_w):
        os.close(fd)
    return Spare(pid, os.pidfd_open(pid), req_w, out_r, err_r, st_r)


def _child_main(uid: int, req_r: int, out_w: int, err_w: int, status_w: int) -> None:
    """In the spare child: isolate, wait for the request, limit, run the code, report, exit."""
    os.setsid()
    if _UID_LOCK_FD is not None:  # the code must not be able to release the worker's uid claim
        os.close(_UID_LOCK_FD)
    _enter_mount_namespace()
    work = tempfile.mkdtemp(prefix="run-", dir="/tmp")
    root = os.geteuid() == 0
    if root:
        os.chown(work, uid, uid)
    os.chdir(work)
    req = read_msg(req_r)
    os.close(req_r)
    if req is None:  # the worker is shutting down
        os._exit(0)
    stdin_path = os.path.join(tempfile.mkdtemp(prefix="in-", dir="/tmp"), "stdin")
    with open(stdin_path, "w", encoding="utf-8") as f:
        f.write(req.get("stdin") or "")
    stdin_fd = os.open(stdin_path, os.O_RDONLY)
    os.unlink(stdin_path)
    os.dup2(stdin_fd, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    for fd in (stdin_fd, out_w, err_w):
        os.close(fd)
    limits = {
        resource.RLIMIT_AS: int(req["memory_mb"]) * 1024 * 1024,
        resource.RLIMIT_CPU: int(req["timeout_s"]) + 1,
        resource.RLIMIT_NPROC: int(req.get("max_procs", 64)),
        resource.RLIMIT_FSIZE: int(req.get("max_file_bytes", 16 * 1024 * 1024)),
        resource.RLIMIT_NOFILE: 64,
        resource.RLIMIT_CORE: 0,
    }
    for what, value in limits.items():
        resource.setrlimit(what, (value, value))
    if root:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.environ.clear()
    os.environ.update(SCRUBBED_ENV, HOME=work, TMPDIR=work)
    sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    sys.argv = ["<code>"]
    kind, code = "ok", 0
    try:
        exec(
            compile(req["code"], "<code>", "exec"),
            {"__name__": "__main__", "__builtins__": __builtins__},
        )
    except SystemExit as e:
        kind = "exit"
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    except MemoryError:
        kind, code = "memory", 1
        print("MemoryError: the code exceeded its memory limit", file=sys.stderr)
    except BaseException as e:
        kind, code = "exception", 1
        # leave this sandbox's own frame out of the traceback the model sees
        traceback.print_exception(type(e), e, e.__traceback__.tb_next if e.__traceback__ else None)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        # close the output pipes before reporting, so the worker has all output once it has the status
        os.close(1)
        os.close(2)
        os.write(status_w, json.dumps({"kind": kind, "code": code}).encode())
        os._exit(code & 0xFF)


# --- the worker side of one call ---------------------------------------------------------------


def _start_reaper(uid: int) -> tuple[int, int]:
    """A small root process, forked before the heavy imports, that kills every process of
    ``uid`` on request (one byte in, one byte out). Forking it per call is cheap, where
    forking the warm worker is not."""
    req_r, req_w = os.pipe()
    ack_r, ack_w = os.pipe()
    if os.fork() == 0:
        os.close(req_w)
        os.close(ack_r)
        while os.read(req_r, 1):
            pid = os.fork()
            if pid == 0:
                try:
                    os.setgid(uid)
                    os.setuid(uid)
                    os.kill(-1, signal.SIGKILL)  # every process of uid but this one
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
            os.write(ack_w, b"k")
        os._exit(0)
    os.close(req_r)
    os.close(ack_w)
    return req_w, ack_r


_REAPER: tuple[int, int] | None = None
_NET_ISOLATED = False
_UID_LOCK_FD: int | None = None


def claim_uid() -> int:
    """A sandbox uid no other live worker on this machine uses: the first whose lock
    file this process can lock (the lock dies with the worker)."""
    global _UID_LOCK_FD
    os.makedirs(UID_LOCK_DIR, mode=0o700, exist_ok=True)
    for n in range(SANDBOX_UID_COUNT):
        fd = os.open(os.path.join(UID_LOCK_DIR, str(n)), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _UID_LOCK_FD = fd
        return SANDBOX_UID_BASE + n
    raise RuntimeError(f"all {SANDBOX_UID_COUNT} sandbox uids are in use")


def _uid_has_processes(uid: int) -> bool:
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    return True
            except FileNotFoundError:
                continue
    return False


def _reap_orphans() -> None:
    """Collect exited children and killed descendants re-parented to this worker (a child
    subreaper), so that zombies never count against the sandbox uid's process limit."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def cleanup(spare: Spare, uid: int) -> None:
    """After a call: nothing of the sandbox uid may survive into the next call."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(spare.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(spare.pid, 0)
    if _REAPER is not None and _uid_has_processes(uid):
        os.write(_REAPER[0], b"k")
        os.read(_REAPER[1], 1)
        # SIGKILL is asynchronous: wait (bounded) until the killed are gone and reaped, so
        # nothing of this call is still alive, or a zombie, when the next call starts
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            _reap_orphans()
            if not _uid_has_processes(uid):
                break
            time.sleep(0.002)
    _reap_orphans()


def run_one(req: dict, spare: Spare, after_dispatch=None) -> dict:
    """Hand ``req`` to ``spare`` and collect its outcome; ``after_dispatch`` runs while the code runs."""
    cap = int(req["max_output_bytes"])
    t0 = time.monotonic()
    write_msg(spare.req_w, req)
    os.close(spare.req_w)
    if after_dispatch is not None:
        after_dispatch()
    bufs = {spare.out_r: bytearray(), spare.err_r: bytearray()}
    status_raw = bytearray()
    truncated = False
    sel = selectors.DefaultSelector()
    for fd in (spare.out_r, spare.err_r, spare.status_r, spare.pidfd):
        sel.register(fd, selectors.EVENT_READ)
    deadline = t0 + float(req["timeout_s"])
    timed_out = exited = False
    while True:
        # done: the status arrived and both output pipes are closed (the child closes them
        # before reporting), or the child is gone and nothing more is buffered.
        open_outputs = [fd for fd in bufs if fd in sel.get_map()]
        if spare.status_r not in sel.get_map() and not open_outputs:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = not status_raw
            break
        # once the child has finished (status in, or gone), only drain what is buffered:
        # a descendant holding the pipes open must not hold the call up
        finished = exited or (bool(status_raw) and spare.status_r not in sel.get_map())
        events = sel.select(timeout=0 if finished else remaining)
        if finished and not events:
            break
        for key, _ in events:
            if key.fd == spare.pidfd:
                exited = True
                sel.unregister(spare.pidfd)
                continue
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fd)
            elif key.fd == spare.status_r:
                status_raw += chunk
            else:
                buf = bufs[key.fd]
                room = cap - len(buf)
                truncated |= len(chunk) > room
                buf += chunk[: max(room, 0)]
    duration = time.monotonic() - t0
    sel.close()
    info = json.loads(bytes(status_raw)) if status_raw else {}
    exit_code: int | None
    if info:
        exit_code = int(info["code"])
    else:  # killed: by us at the deadline, or by a signal (CPU limit, OOM, its own doing)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(spare.pid, signal.SIGKILL)
        _, wait_status = os.waitpid(spare.pid, 0)
        exit_code = os.waitstatus_to_exitcode(wait_status)
    for fd in (spare.out_r, spare.err_r, spare.status_r, spare.pidfd):
        os.close(fd)
    if timed_out or exit_code == -signal.SIGXCPU:
        status = "timeout"
    elif info.get("kind") == "memory":
        status = "memory"
    elif info:
        status = "ok" if exit_code == 0 else "error"
    else:
        status = "error" if exit_code else "sandbox_error"
    stderr = bufs[spare.err_r].decode("utf-8", "replace")
    if status == "timeout":
        stderr += f"\nTimeoutError: execution exceeded {req['timeout_s']} s"
    elif not info and exit_code is not None and exit_code < 0:
        stderr += f"\nkilled by signal {-exit_code}"
    return {
        "status": status,
        "stdout": bufs[spare.out_r].decode("utf-8", "replace"),
        "stderr": stderr,
        "exit_code": exit_code,
        "duration_s": duration,
        "truncated": truncated,
        "network_isolated": _NET_ISOLATED,
    }


def main() -> None:
    global _REAPER, _NET_ISOLATED
    uid = claim_uid() if os.geteuid() == 0 else os.geteuid()
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans of a call come back here to be reaped
    if os.geteuid() == 0:
        _REAPER = _start_reaper(uid)
    _NET_ISOLATED = _enter_network_namespace()
    if os.geteuid() == 0:
        _share_python_install()
    for name in filter(None, sys.argv[2].split(",")):
        with contextlib.suppress(Exception):  # a missing optional module is only imported later
            importlib.import_module(name)
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    write_msg(proto_out, {"ready": True, "pid": os.getpid()})
    spare = spawn_spare(uid)
    while True:
        req = read_msg(proto_in)
        if req is None:
            return
        current = spare
        holder: list[Spare] = []
        try:
            # the next child is forked while this one runs the code
            reply = run_one(
                req, current, after_dispatch=lambda h=holder: h.append(spawn_spare(uid))
            )
        except Exception as e:  # the executor failed, not the code
            reply = {
                "status": "sandbox_error",
                "stderr": f"sandbox failure: {e!r}",
                "exit_code": None,
            }
        write_msg(proto_out, reply)
        cleanup(current, uid)
        spare = holder[0] if holder else spawn_spare(uid)


if __name__ == "__main__":
    main()
