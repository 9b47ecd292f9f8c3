"""Hostile programs, run for real in the sandbox. Each must be contained, come back within its timeout plus a
small margin, leave no process behind, and leave the pool serving normal jobs."""

import os
import socket
import threading
import time

import pytest

from rhlab.sandbox import Job



def test_environment_secrets_do_not_leak(run_contained, pool):
    code = r"""
import os, glob
print(dict(os.environ))
for p in glob.glob('/proc/*/environ'):
    try:
        print(p, open(p, 'rb').read())
    except OSError:
        pass
"""
    r = run_contained(pool, code)
    assert r.exit_code == 0
    assert "sk-rhlab-test-secret" not in r.stdout
    assert "OPENAI_API_KEY" not in r.stdout


def test_host_files_are_invisible(run_contained, pool, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("host-secret-42")
    os.chmod(tmp_path, 0o755)
    os.chmod(secret, 0o644)
    project_file = os.path.abspath("pyproject.toml")
    code = f"""
import os
hits = []
for p in [{str(secret)!r}, {project_file!r}, '/root/.bashrc', '/etc/shadow', '/etc/hostname', '/home', '/root']:
    try:
        if os.path.isdir(p):
            hits.append((p, os.listdir(p)))
        else:
            hits.append((p, open(p).read()[:50]))
    except OSError:
        pass
print(hits)
"""
    r = run_contained(pool, code)
    assert "host-secret-42" not in r.stdout
    assert "[project]" not in r.stdout
    assert r.stdout.strip() in ("[]", "[('/root', [])]") or ".bashrc" not in r.stdout


def test_loopback_server_is_unreachable(run_contained, pool):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    accepted = []

    def accept():
        server.settimeout(4)
        try:
            conn, _ = server.accept()
            accepted.append(conn)
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    code = f"""
import socket
for host in ['127.0.0.1', 'localhost', '0.0.0.0']:
    try:
        socket.create_connection((host, {port}), timeout=1).sendall(b'hi')
        print('CONNECTED', host)
    except OSError as e:
        print('refused', host, type(e).__name__)
"""
    r = run_contained(pool, code)
    t.join()
    server.close()
    assert "CONNECTED" not in r.stdout
    assert accepted == []


def test_writes_outside_the_work_dir_fail(run_contained, pool):
    import sys

    code = f"""
import os
wrote = []
for p in ['/usr/rhlab-x', '/etc/passwd', '/opt/rhlab/worker.py', {sys.prefix + '/rhlab-x'!r}, '/rhlab-x']:
    try:
        with open(p, 'a') as fh:
            fh.write('x')
        wrote.append(p)
    except OSError:
        pass
open('inside.txt', 'w').write('fine')
print('WROTE', wrote, open('inside.txt').read())
"""
    r = run_contained(pool, code)
    assert "WROTE [] fine" in r.stdout, r


def test_fork_bomb(run_contained, pool):
    code = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    r = run_contained(pool, code, timeout_s=3)
    assert r.timed_out or r.exit_code != 0


def test_memory_bomb(run_contained, pool):
    r = run_contained(pool, "x = bytearray(8 * 1024**3)\nprint('allocated')", timeout_s=5)
    assert r.exit_code != 0
    assert "MemoryError" in r.stderr
    assert "allocated" not in r.stdout


def test_infinite_loop_times_out(run_contained, pool):
    r = run_contained(pool, "while True:\n    pass\n", timeout_s=1.5)
    assert r.timed_out
    assert r.exit_code is None
    assert 1.4 <= r.duration_s < 3


def test_double_forked_daemon_is_killed(run_contained, pool):
    code = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(60)
        open('/tmp/daemon-was-here', 'w').write('x')
    os._exit(0)
print('parent done')
"""
    r = run_contained(pool, code)
    assert r.exit_code == 0 and "parent done" in r.stdout
    time.sleep(0.2)
    r2 = pool.run(Job(files={"c.py": "import os; print(os.path.exists('/tmp/daemon-was-here'))"},
                      argv=["python", "c.py"]))
    assert r2.stdout == "False\n"


def test_huge_output_is_truncated_without_buffering(run_contained, pool):
    code = "import sys\nchunk = 'x' * 1024 * 1024\nfor _ in range(200):\n    sys.stdout.write(chunk)\nprint('END')"
    r = run_contained(pool, code, timeout_s=10)
    assert r.stdout_truncated
    assert len(r.stdout) <= 64 * 1024
    assert r.exit_code == 0


def test_kill_everything(run_contained, pool):
    r = run_contained(pool, "import os, signal\nos.kill(-1, signal.SIGKILL)\nprint('survived')")
    if os.geteuid() == 0:  # jobs run under their own uid: nothing but the job's own processes can be hit
        assert r.exit_code == 0 and "survived" in r.stdout and r.error is None, r
    else:  # same uid as the worker: the worker may die with it, and is replaced
        assert r.exit_code == 0 or "worker" in (r.error or "")


def test_killing_the_parent(run_contained, pool):
    code = """
import os, signal
for pid in (os.getppid(), 1):
    try:
        os.kill(pid, signal.SIGKILL)
        print('killed', pid)
    except OSError as e:
        print('refused', pid, type(e).__name__)
"""
    r = run_contained(pool, code)
    assert "killed 1" not in r.stdout
    if os.geteuid() == 0:
        assert "refused" in r.stdout and "killed" not in r.stdout and r.error is None, r
    else:
        assert r.error is None or "worker" in r.error


def test_fd_exhaustion(run_contained, pool):
    code = """
import os
fds = []
try:
    while True:
        fds.append(os.open('/dev/null', os.O_RDONLY))
except OSError as e:
    print('stopped at', len(fds), type(e).__name__)
"""
    r = run_contained(pool, code)
    assert "stopped at" in r.stdout and "OSError" in r.stdout


def test_disk_fill(run_contained, pool):
    code = """
import os
n = 0
try:
    while True:
        with open('fill-%d' % n, 'wb') as fh:
            for _ in range(16):
                fh.write(b'x' * 1024 * 1024)
        n += 1
except OSError as e:
    print('stopped after', n, type(e).__name__, e.errno)
"""
    r = run_contained(pool, code, timeout_s=10)
    assert "stopped after" in r.stdout or r.exit_code != 0
    r2 = pool.run(Job(files={"c.py": "import os; print(sorted(os.listdir('.')))"}, argv=["python", "c.py"]))
    assert r2.stdout.strip() == "['c.py']"


def test_spawned_shells_are_contained(run_contained, pool):
    code = """
import subprocess
out = subprocess.run(['sh', '-c', 'id -u; cat /root/.bashrc; ls /home; echo $OPENAI_API_KEY; sleep 30 >/dev/null 2>&1 &'],
                     capture_output=True, text=True)
print(out.stdout, out.returncode)
"""
    r = run_contained(pool, code)
    first = r.stdout.split()[0]
    assert first != "0"
    assert "sk-rhlab" not in r.stdout


@pytest.mark.parametrize(
    "call",
    [
        "libc.ptrace(16, 1, 0, 0)",  # PTRACE_ATTACH to pid 1
        "libc.unshare(0x10000000)",  # CLONE_NEWUSER
        "libc.unshare(0x00020000)",  # CLONE_NEWNS
        "libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)",
        "libc.setns(0, 0)",
        "libc.chroot(b'/tmp')",
    ],
)
def test_privileged_syscalls_are_refused(run_contained, pool, call):
    code = f"import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nrc = {call}\nprint('RC', rc, ctypes.get_errno())"
    r = run_contained(pool, code)
    assert "RC -1" in r.stdout, r.stdout + r.stderr
