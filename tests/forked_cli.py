"""`python -m bot ARGS` for the tests, in a child forked from a process that has imported the bot once.

A `bananacord` command spends most of its CPU importing: about 0.55 s to load the configuration (pydantic), 1.3 s
for the whole bot, against a few tens of milliseconds for the command's own work. The suite runs the CLI a few
hundred times, and those imports were a large share of its CPU (docs/performance.md, "The test suite's own
time"). Here one server process per test process imports the bot, then forks a child per command. The child is a
process of its own as a command's is: its own environment, working folder, stdin (/dev/null), stdout and stderr
(files the caller reads), exit code; it runs the package as ``python -m bot`` does (``runpy``, as ``__main__``).
What it does not get is a fresh interpreter: modules are imported already, which the commands do not depend on.

``run_bot`` is ``subprocess.run`` of a command; ``start_bot`` is ``subprocess.Popen`` of one (``bananacord run``
for the tests that stop, kill or restart the bot as an operator's process): a ``ForkedProcess`` with the pid to
signal, and the exit status the server reads with ``waitpid``, so a signal's death is ``-signum`` as from Popen.
A test that gives a ``preexec_fn``, or must see a fresh interpreter (which modules a command imports, how much
memory the process takes from its start), starts a real process. ``TESTS_REAL_CLI_PROCESSES=1`` sends every run
and start to a real process too.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

# The server: imports the bot, then forks a child per connection, and tells each connection its child's exit status
# once it has reaped it. It stops when the test process that started it goes (its stdin, a pipe from that process,
# reads EOF).
_SERVER = r"""
import importlib, json, os, runpy, select, signal, socket, sys, threading, time, traceback
MODULES = (
    "bot.__main__", "bot.config", "bot.check", "bot.db_cli", "bot.usage_cli", "bot.service", "bot.generate", "bot.app",
)
for name in MODULES:
    try:
        importlib.import_module(name)
    except ImportError:
        pass  # an older tree (PYTHONPATH) without it: its commands import what they need as they run
# The cogs, which `bananacord run` imports at each start (about 0.1 s).
for name in getattr(sys.modules.get("bot.app"), "EXTENSIONS", ()):
    importlib.import_module(name)
assert threading.active_count() == 1, "a fork with other threads running could leave their locks held"
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sys.argv[1])
listener.listen(64)
# SIGCHLD wakes the loop below (through the wakeup pipe), which reaps the child and sends its status.
wake_r, wake_w = os.pipe()
os.set_blocking(wake_r, False)
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda signum, frame: None)
children = {}  # pid -> the connection that started it
sys.stdout.write("ready\n")
sys.stdout.flush()


def child(conn):
    # As a fresh process has it: default SIGCHLD (a command may wait on its own children), none of the server's
    # descriptors but the connection.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in (wake_r, wake_w):
        os.close(fd)
    listener.close()
    for other in children.values():
        other.close()
    request, fds = b"", []
    while not request.endswith(b"\n"):
        data, got, _flags, _addr = socket.recv_fds(conn, 1 << 20, 3)
        if not data:
            os._exit(70)
        request += data
        fds += got
    asked = json.loads(request)
    stdin = os.open(os.devnull, os.O_RDONLY)
    for source, target in ((stdin, 0), (fds[0], 1), (fds[1], 2)):
        os.dup2(source, target)
        os.close(source)
    os.chdir(asked["cwd"])
    os.environ.clear()
    os.environ.update(asked["env"])
    time.tzset()
    if asked.get("nohup"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as `nohup` starts a command
    conn.sendall(f"pid {os.getpid()}\n".encode())
    conn.close()
    sys.argv = ["bot", *asked["args"]]
    # Run afresh as __main__ as `-m` does; left imported, runpy warns that it may behave unpredictably.
    sys.modules.pop("bot.__main__", None)
    code = 0
    try:
        runpy.run_module("bot", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code & 0xFF
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        import atexit
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def reap():
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            try:
                conn.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
            except OSError:
                pass  # the caller has gone
            conn.close()


while True:
    ready, _, _ = select.select([listener, sys.stdin, wake_r], [], [])
    if sys.stdin in ready:
        break  # the test process is gone; children still running run on, as a real process's would
    if wake_r in ready:
        try:
            os.read(wake_r, 4096)
        except BlockingIOError:
            pass
    if listener in ready:
        conn, _ = listener.accept()
        pid = os.fork()
        if pid == 0:
            child(conn)
        children[pid] = conn
    reap()
"""

_lock = threading.Lock()
_server: tuple[subprocess.Popen[str], str] | None = None


def _start() -> str:
    """The server's socket path, starting the server first if this process has none yet."""
    global _server
    with _lock:
        if _server is not None and _server[0].poll() is None:
            return _server[1]
        folder = tempfile.mkdtemp(prefix="bananacord-cli-")
        path = os.path.join(folder, "fork.sock")
        server = subprocess.Popen(
            [sys.executable, "-c", _SERVER, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert server.stdout is not None
        if server.stdout.readline() != "ready\n":
            raise RuntimeError("the CLI fork server did not start")
        atexit.register(_stop, server, folder)
        _server = (server, path)
        return path


def _stop(server: subprocess.Popen[str], folder: str) -> None:
    if server.stdin is not None:
        server.stdin.close()
    try:
        server.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.kill()
    for name in os.listdir(folder):
        os.unlink(os.path.join(folder, name))
    os.rmdir(folder)


class ForkedProcess:
    """What the tests use of ``subprocess.Popen`` for a process the fork server started: ``pid``, ``args``,
    ``returncode``, ``poll``, ``wait``, ``send_signal``, ``terminate``, ``kill``. The status is ``waitpid``'s, read
    by the server (the child is its child), so a process killed by a signal has ``-signum``, as from Popen."""

    def __init__(self, args: list[str], conn: socket.socket, timeout: float) -> None:
        self.args = args
        self.returncode: int | None = None
        self._conn = conn
        self._buffer = b""
        self._lock = threading.Lock()
        line = self._line(time.monotonic() + timeout)
        if line is None or not line.startswith("pid "):
            # The child ended before it was set up (a request it could not read): no process to give.
            raise RuntimeError(f"the fork server did not start {args}: {line!r}")
        self.pid = int(line.split()[1])

    def __del__(self) -> None:
        # Popen warns only of a process still running; one that ended and was never waited for is no fault.
        # Closed here, its connection is not reported as an unclosed socket, an error in whichever test the
        # collector happens to run in.
        self._conn.close()

    def _line(self, deadline: float | None) -> str | None:
        """The server's next line; None once it closed the connection; TimeoutError past ``deadline``."""
        while b"\n" not in self._buffer:
            self._conn.settimeout(None if deadline is None else max(0.0, deadline - time.monotonic()))
            try:
                data = self._conn.recv(4096)
            except BlockingIOError:  # a timeout of 0 makes the socket non-blocking
                raise TimeoutError from None
            if not data:
                return None
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def _settle(self, deadline: float | None, *, block: bool = True) -> None:
        if not self._lock.acquire(blocking=block):
            return  # another thread is waiting for the status: poll() says what is known
        try:
            if self.returncode is not None:
                return
            line = self._line(deadline)
            # Closed with no status: the server itself was killed, and cannot tell. Say killed.
            self.returncode = -signal.SIGKILL if line is None else int(line.split()[1])
            self._conn.close()
        finally:
            self._lock.release()

    def poll(self) -> int | None:
        with contextlib.suppress(TimeoutError):
            self._settle(time.monotonic(), block=False)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        try:
            self._settle(None if timeout is None else time.monotonic() + timeout)
        except TimeoutError:
            raise subprocess.TimeoutExpired(self.args, timeout or 0) from None
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # ended since: as Popen, nothing to signal
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def forking() -> bool:
    """Whether commands go to the fork server (else to real processes: ``TESTS_REAL_CLI_PROCESSES=1``)."""
    return os.environ.get("TESTS_REAL_CLI_PROCESSES") != "1"


def start_bot(
    args: list[str], *, env: dict[str, str], cwd: Path | str, stdout: int, stderr: int, nohup: bool = False
) -> ForkedProcess:
    """``subprocess.Popen([sys.executable, "-m", "bot", *args], ...)``, forked: its stdout and stderr the
    descriptors given, stdin /dev/null; ``nohup``: SIGHUP ignored, as `nohup` starts a command."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(_start())
        request = {"args": args, "env": env, "cwd": str(cwd), "nohup": nohup}
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [stdout, stderr])
        return ForkedProcess([sys.executable, "-m", "bot", *args], conn, timeout=30)
    except BaseException:
        conn.close()
        raise


def run_bot(
    args: list[str], *, env: dict[str, str], cwd: Path | str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, ...)``, forked."""
    command = [sys.executable, "-m", "bot", *args]
    if not forking():
        return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = start_bot(args, env=env, cwd=cwd, stdout=out.fileno(), stderr=err.fileno())
        try:
            code = process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            raise subprocess.TimeoutExpired(command, timeout) from None
        return subprocess.CompletedProcess(command, code, _text(out), _text(err))


def _text(file: IO[bytes]) -> str:
    """What ``text=True`` makes of a stream: decoded, its line ends made "\\n"."""
    file.seek(0)
    return file.read().decode(errors="replace").replace("\r\n", "\n").replace("\r", "\n")
