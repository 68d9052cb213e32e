"""`python -m bot ARGS` for the tests, in a child forked from a process that has imported the bot once.

A `bananacord` command spends most of its CPU importing: about 0.55 s to load the configuration (pydantic), 1.3 s
for the whole bot, against a few tens of milliseconds for the command's own work. The suite runs the CLI a few
hundred times, and those imports were a large share of its CPU (docs/performance.md, "The test suite's own
time"). Here one server process per test process imports the bot, then forks a child per command. The child is a
process of its own as a command's is: its own environment, working folder, stdin (/dev/null), stdout and stderr
(files the caller reads), exit code; it runs the package as ``python -m bot`` does (``runpy``, as ``__main__``).
What it does not get is a fresh interpreter: modules are imported already, which the commands do not depend on.

Only ``subprocess.run``-style runs to completion go this way. A test that signals the process, gives it a
``preexec_fn``, or must see a fresh interpreter (which modules a command imports) starts a real one.
``TESTS_REAL_CLI_PROCESSES=1`` sends every run to a real process too.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

# The server: imports the bot, then forks a child per connection. It stops when the test process that started
# it goes (its stdin, a pipe from that process, reads EOF).
_SERVER = r"""
import importlib, json, os, runpy, select, signal, socket, sys, threading, time, traceback
for name in ("bot.__main__", "bot.config", "bot.check", "bot.db_cli", "bot.usage_cli", "bot.service", "bot.generate"):
    try:
        importlib.import_module(name)
    except ImportError:
        pass  # an older tree (PYTHONPATH) without it: its commands import what they need as they run
assert threading.active_count() == 1, "a fork with other threads running could leave their locks held"
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sys.argv[1])
listener.listen(64)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel; their callers get the code
sys.stdout.write("ready\n")
sys.stdout.flush()


def child(conn):
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # as a fresh process has it: a command may wait on its own
    listener.close()
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
    conn.sendall(f"{os.getpid()}\n".encode())
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
        conn.sendall(f"{code}\n".encode())
        os._exit(code)


while True:
    ready, _, _ = select.select([listener, sys.stdin], [], [])
    if sys.stdin in ready:
        break  # the test process is gone
    conn, _ = listener.accept()
    if os.fork() == 0:
        child(conn)
    conn.close()
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


def run_bot(
    args: list[str], *, env: dict[str, str], cwd: Path | str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, ...)``, forked."""
    command = [sys.executable, "-m", "bot", *args]
    if os.environ.get("TESTS_REAL_CLI_PROCESSES") == "1":
        return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(_start())
            request = json.dumps({"args": args, "env": env, "cwd": str(cwd)}).encode() + b"\n"
            socket.send_fds(conn, [request], [out.fileno(), err.fileno()])
            lines = _lines(conn, deadline)
            pid = 0
            try:
                pid = int(next(lines))
                code = int(next(lines))
            except (StopIteration, ValueError):
                # No code: the child died without reporting one (killed, or crashed in the interpreter).
                code = -signal.SIGKILL
            except TimeoutError:
                if pid:
                    os.kill(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(command, timeout) from None
        return subprocess.CompletedProcess(command, code, _text(out), _text(err))


def _text(file: IO[bytes]) -> str:
    """What ``text=True`` makes of a stream: decoded, its line ends made "\\n"."""
    file.seek(0)
    return file.read().decode(errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def _lines(conn: socket.socket, deadline: float) -> Iterator[str]:
    """The lines ``conn`` sends, each read before ``deadline`` (TimeoutError past it)."""
    buffer = b""
    while True:
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode()
        conn.settimeout(max(0.001, deadline - time.monotonic()))
        data = conn.recv(4096)
        if not data:
            return
        buffer += data
