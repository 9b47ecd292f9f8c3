"""Fork-server worker: runs inside the sandbox, forks one child per job.

This file is copied (bind-mounted read-only) into the sandbox and run with the sandbox's Python, so it
imports nothing from rhlab: the project tree is invisible in there. Protocol on the worker's original stdin/
stdout, which are moved to private fds at start so stray prints cannot corrupt it:

    frame   = 8-byte big-endian length + UTF-8 JSON
    pool -> worker : {"id", "files": {name: {"b64": ...}}, "argv", "stdin_b64", "timeout_s", "limits", "env"}
    worker -> pool : {"ready": true, ...} once, then one result per request

Each job child: new session, sheds privileges (a separate uid when the worker is root), rlimits, clean env,
private job directory; Python commands run in the forked child (stdlib and pytest already imported), other
commands are exec'd. After the job the worker kills every process it can signal (its own pid namespace),
reaps them (it is a subreaper) and wipes the job and temp directories. Anything odd ends the worker with
status 3 so the pool replaces it.
"""

import _signal
import base64
import ctypes
import json
import os
import resource
import select
import signal
import struct
import sys
import time

CONFIG = json.loads(sys.argv[1])
JOB_DIR = CONFIG["job_dir"]
TMP_DIR = CONFIG["tmp_dir"]
JOB_UID = CONFIG.get("job_uid")
JOB_GID = CONFIG.get("job_gid")
PREIMPORT = CONFIG.get("preimport", [])
PR_SET_CHILD_SUBREAPER = 36
PR_SET_DUMPABLE = 4
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option, arg):
    _libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0)


# --- protocol ---------------------------------------------------------------------------------------------

REQ_FD = os.dup(0)
RESP_FD = os.dup(1)
_devnull = os.open(os.devnull, os.O_RDWR)
os.dup2(_devnull, 0)
os.dup2(2, 1)  # stray worker prints go to the worker's stderr, never into the protocol
os.set_inheritable(REQ_FD, False)
os.set_inheritable(RESP_FD, False)


def _read_exact(fd, n):
    chunks = []
    while n:
        b = os.read(fd, n)
        if not b:
            return None
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def recv():
    head = _read_exact(REQ_FD, 8)
    if head is None:
        return None
    (n,) = struct.unpack(">Q", head)
    body = _read_exact(REQ_FD, n)
    if body is None:
        return None
    return json.loads(body)


def send(obj):
    data = json.dumps(obj).encode()
    payload = struct.pack(">Q", len(data)) + data
    view = memoryview(payload)
    while view:
        k = os.write(RESP_FD, view)
        view = view[k:]


# --- job child ---------------------------------------------------------------------------------------------

RLIMITS = {
    "cpu_s": resource.RLIMIT_CPU,
    "memory_bytes": resource.RLIMIT_AS,
    "file_size_bytes": resource.RLIMIT_FSIZE,
    "nproc": resource.RLIMIT_NPROC,
    "nofile": resource.RLIMIT_NOFILE,
}


_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC  # as open(path, "wb")


def _write_files(files):
    for name, spec in files.items():
        path = os.path.normpath(os.path.join(JOB_DIR, name))
        if not path.startswith(JOB_DIR + os.sep):
            raise ValueError("file name escapes the job directory: %r" % name)
        parent = os.path.dirname(path)
        if parent != JOB_DIR:
            os.makedirs(parent, exist_ok=True)
        data = memoryview(base64.b64decode(spec["b64"]))
        fd = os.open(path, _WRITE_FLAGS, 0o666)
        try:
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
        if spec.get("mode"):
            os.chmod(path, int(spec["mode"]))


def _reset_stdio():
    sys.stdin = open(0, "r", encoding="utf-8", errors="surrogateescape", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1)
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr


def _exit_code_of(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        print(code, file=sys.stderr)
    except Exception:
        pass
    return 1


def _run_script(path, rest):
    """`python path args...`: a fresh __main__ module, as the interpreter builds it (runpy is slower here)."""
    import types

    full = os.path.join(JOB_DIR, path)
    sys.argv = [path] + rest
    sys.path[0] = os.path.dirname(full)
    with open(full, "rb") as fh:
        source = fh.read()
    main = types.ModuleType("__main__")
    main.__file__ = full
    main.__builtins__ = __builtins__
    main.__cached__ = None
    sys.modules["__main__"] = main
    exec(compile(source, path, "exec"), main.__dict__)


def _as_interpreter(body):
    """Run body() as a whole program: SystemExit → status, uncaught exception → sys.excepthook and 1, then
    non-daemon threads are joined and the job's atexit handlers run, as at interpreter shutdown."""
    import atexit
    import threading

    try:
        try:
            status = body()
            status = 0 if status is None else int(status)
        except SystemExit as exc:
            status = _exit_code_of(exc)
        except BaseException:
            # Through sys.excepthook, as the interpreter would (a patched hook is part of the job's behaviour).
            sys.excepthook(*sys.exc_info())
            status = 1
        try:
            threading._shutdown()
        except BaseException:
            pass
        atexit._run_exitfuncs()
        return status
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass


def _pytest(args):
    import pytest

    return int(pytest.main(args))


def _python_main(argv):
    """`python [-m MODULE | -c CODE | FILE] args...` in this (forked) process; returns the exit status."""
    import runpy

    args = list(argv[1:])
    while args and args[0] in ("-u", "-B", "-I", "-E", "-s", "-S", "-q"):
        args = args[1:]
    if args[:1] == ["-m"]:
        module, rest = args[1], args[2:]
        sys.argv = [module] + rest
        sys.path[0] = JOB_DIR
        if module == "pytest":
            return _as_interpreter(lambda: _pytest(rest))
        return _as_interpreter(lambda: runpy.run_module(module, run_name="__main__", alter_sys=True) and None)
    if args[:1] == ["-c"]:
        sys.argv = ["-c"] + args[2:]
        sys.path[0] = ""
        code = compile(args[1], "<string>", "exec")
        return _as_interpreter(lambda: exec(code, {"__name__": "__main__", "__builtins__": __builtins__}))
    if args:
        return _as_interpreter(lambda: _run_script(args[0], args[1:]))
    return 0


def _pytest_main(argv):
    sys.argv = list(argv)
    sys.path[0] = JOB_DIR
    return _as_interpreter(lambda: _pytest(argv[1:]))


def _child(req, out_w, err_w):
    try:
        os.setsid()
        os.close(REQ_FD)
        os.close(RESP_FD)
        # Job stdin from an anonymous in-memory file: never blocks the worker, however large.
        stdin_data = base64.b64decode(req.get("stdin_b64") or "")
        in_fd = os.memfd_create("stdin")
        os.write(in_fd, stdin_data)
        os.lseek(in_fd, 0, os.SEEK_SET)
        os.dup2(in_fd, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, 65536)
        if JOB_UID is not None:
            os.setgroups([])
            os.setgid(JOB_GID)
            os.setuid(JOB_UID)  # from root to a non-root uid: every capability is dropped too
        _write_files(req["files"])
        os.chdir(JOB_DIR)
        limits = req["limits"]
        for key, res in RLIMITS.items():
            value = limits.get(key)
            if value is not None:
                value = int(value)
                resource.setrlimit(res, (value, value))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        env = req["env"]
        if env != _WORKER_ENV:  # usually equal (the worker starts with the base env): skip the churn
            os.environ.clear()
            os.environ.update(env)
        # The C-level call: signal.signal's enum conversions run cold code in every child (~80 copy-on-write faults).
        _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
        _reset_stdio()
        import atexit

        atexit._clear()  # only the job's own exit handlers run
        argv = req["argv"]
        prog = os.path.basename(argv[0])
        if prog.startswith("python"):
            status = _python_main(argv)
        elif prog in ("pytest", "py.test"):
            status = _pytest_main(argv)
        else:
            os.execvpe(argv[0], argv, env)
    except SystemExit as exc:
        status = _exit_code_of(exc)
    except BaseException as exc:  # the sandbox's own setup failed: say so on the job's stderr
        try:
            os.write(2, ("rhlab-sandbox: job setup failed: %r\n" % (exc,)).encode())
        except Exception:
            pass
        status = 125
    os._exit(status)


KILL_DEADLINE_S = 2.0  # generous: under heavy load a dying fork bomb takes a while to be reaped


def _kill_until_clear(send_kill):
    """Send SIGKILL (via send_kill) and reap until no job process is left; False if some survive the deadline."""
    deadline = time.monotonic() + KILL_DEADLINE_S
    while True:
        try:
            send_kill()
        except (ProcessLookupError, PermissionError):
            pass
        while True:
            try:
                got, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if got == 0:
                break
        if not _other_processes():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.002)


def _other_processes():
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid in (me, 1):
            continue
        if not CONFIG.get("pid_namespace"):
            # Without a private pid namespace only our own descendants are ours to worry about.
            try:
                with open("/proc/%d/stat" % pid) as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if int(fields[3]) == 0:
                    continue
                sid = int(fields[3])
            except (OSError, IndexError, ValueError):
                continue
            if sid not in _JOB_SESSIONS:
                continue
        try:
            with open("/proc/%d/stat" % pid) as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state in ("Z", "X"):
            continue
        found.append(pid)
    return found


_JOB_SESSIONS = set()
_WORKER_ENV = {}  # the worker's environment, which every job child inherits (set once the worker has started)


def _kill_job_processes(pid):
    if CONFIG.get("pid_namespace"):
        # Everything this worker may signal in its own pid namespace except itself and pid 1: every job process,
        # daemons that left the job's session included.
        return _kill_until_clear(lambda: os.kill(-1, signal.SIGKILL))
    # Weak mode (no pid namespace): kill the job's session; a job that left it cannot be tracked.
    return _kill_until_clear(lambda: os.killpg(pid, signal.SIGKILL))


# Read-only mounts that can sit inside the scratch dirs (a virtualenv under /tmp, say), and the directories
# leading to them: the wipe walks through the latter and leaves the former alone.
KEEP = set(CONFIG.get("keep_paths", []))
KEEP_PARENTS = {os.path.dirname(p) for p in KEEP}
for _p in list(KEEP_PARENTS):
    while _p not in ("/", ""):
        KEEP_PARENTS.add(_p)
        _p = os.path.dirname(_p)


def _remove(path):
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return
    os.chmod(path, 0o700)
    for entry in os.scandir(path):
        _remove(entry.path)
    os.rmdir(path)


def _wipe(path):
    """Remove everything under path (symlinks removed, never followed). The worker does this itself: every
    job process is dead by now, and as root it holds CAP_DAC_OVERRIDE/CAP_FOWNER for files the job made
    unwritable."""
    try:
        for entry in os.scandir(path):
            if entry.path in KEEP:
                continue
            if entry.path in KEEP_PARENTS and entry.is_dir(follow_symlinks=False):
                _wipe(entry.path)
                continue
            _remove(entry.path)
        return True
    except OSError:
        return False


def run_job(req):
    limits = req["limits"]
    cap = int(limits.get("output_bytes") or 65536)
    timeout = float(req["timeout_s"])
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(err_r)
        _child(req, out_w, err_w)
    _JOB_SESSIONS.add(pid)
    os.close(out_w)
    os.close(err_w)
    pidfd = os.pidfd_open(pid)
    bufs = {out_r: bytearray(), err_r: bytearray()}
    total = {out_r: 0, err_r: 0}
    open_fds = {out_r, err_r}
    status = None
    timed_out = False
    deadline = start + timeout
    exited_at = None
    while True:
        now = time.monotonic()
        if status is None and now >= deadline:
            timed_out = True
            break
        if status is not None and (not open_fds or now >= exited_at + 0.05):
            break  # leftover writers (a daemon holding the pipe) get 50 ms, then are killed
        wait_until = deadline if status is None else exited_at + 0.05
        watch = list(open_fds) + ([pidfd] if status is None else [])
        ready, _, _ = select.select(watch, [], [], max(0.0, wait_until - now))
        for fd in ready:
            if fd == pidfd:
                got, st = os.waitpid(pid, os.WNOHANG)
                if got:
                    status = st
                    exited_at = time.monotonic()
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.discard(fd)
                os.close(fd)
                continue
            total[fd] += len(chunk)
            room = cap - len(bufs[fd])
            if room > 0:
                bufs[fd] += chunk[:room]
    duration = time.monotonic() - start
    clean = _kill_job_processes(pid)
    if status is None:
        try:
            got, st = os.waitpid(pid, os.WNOHANG)
            if got:
                status = st
        except ChildProcessError:
            pass
    for fd in list(open_fds):
        os.close(fd)
    os.close(pidfd)
    _JOB_SESSIONS.discard(pid)
    wiped = _wipe(JOB_DIR) and _wipe(TMP_DIR)
    exit_code = None
    signum = None
    if status is not None and not timed_out:
        if os.WIFEXITED(status):
            exit_code = os.WEXITSTATUS(status)
        elif os.WIFSIGNALED(status):
            signum = os.WTERMSIG(status)
            exit_code = -signum
    return {
        "id": req["id"],
        "exit_code": exit_code,
        "signal": signum,
        "timed_out": timed_out,
        "stdout": bytes(bufs[out_r]).decode("utf-8", "replace"),
        "stderr": bytes(bufs[err_r]).decode("utf-8", "replace"),
        "stdout_bytes": total[out_r],
        "stderr_bytes": total[err_r],
        "stdout_truncated": total[out_r] > cap,
        "stderr_truncated": total[err_r] > cap,
        "duration_s": duration,
        "anomaly": None if (clean and wiped) else ("processes left behind" if not clean else "could not wipe job dir"),
    }


def _warm_pytest():
    """Fill the caches every pytest session fills the same way (compiled regexes of argparse and of the default
    collection globs), so that each job child inherits them instead of building them again. Pure caches: no
    pytest configuration, plugin or session exists here."""
    try:
        import argparse
        import fnmatch

        parser = argparse.ArgumentParser(prog="pytest", add_help=False)
        parser.add_argument("file_or_dir", nargs="*")
        parser.add_argument("-q", action="count")
        parser.add_argument("-p", action="append")
        parser.parse_known_args(["-q", "-p", "no:x", "-1", "test_x.py"])
        parser.format_help()
        for pattern in ("test_*.py", "*_test.py"):
            fnmatch.fnmatch("test_x.py", pattern)
    except Exception:
        pass


def main():
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_DUMPABLE, 0)  # jobs cannot read or write the worker's memory through /proc
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    for name in ["pkgutil", "types"] + PREIMPORT:
        try:
            __import__(name)
        except Exception:
            pass
    if CONFIG.get("warm_pytest"):
        _warm_pytest()
    # Freeze everything imported so far: forked children's garbage collections then skip these objects
    # instead of touching (and so copying) every page the worker owns.
    import gc

    gc.collect()
    gc.freeze()
    os.makedirs(JOB_DIR, exist_ok=True)
    os.makedirs(TMP_DIR, exist_ok=True)
    if JOB_UID is not None:
        os.chmod(JOB_DIR, 0o700)
        os.chown(JOB_DIR, JOB_UID, JOB_GID)
        os.chmod(TMP_DIR, 0o1777)
    _WORKER_ENV.update(os.environ)
    send({"ready": True, "pid": os.getpid(), "uid": os.getuid(), "python": sys.version.split()[0]})
    while True:
        req = recv()
        if req is None:
            return 0
        result = run_job(req)
        del req
        send(result)
        if result["anomaly"]:
            return 3


if __name__ == "__main__":
    sys.exit(main())
