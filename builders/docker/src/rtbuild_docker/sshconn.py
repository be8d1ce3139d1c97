"""``ssh://`` engines, reached as the docker CLI reaches them, behind a local socket.

For each connection the docker CLI runs ``ssh -o ConnectTimeout=30 -T [-l USER] [-p PORT]
-- HOST docker system dial-stdio`` and speaks HTTP over the pipes. rtbuild does the same,
with the pipes being one end of a connection to a unix socket of its own (in a private
temporary directory): its plain-socket engine calls and the docker SDK then talk to an
ssh engine exactly as to a local one, with the same timeouts. Each ssh process has its
connection's socket as stdin and stdout, so it ends with that connection, and with
rtbuild itself (``PR_SET_PDEATHSIG``); :func:`close_all` runs at exit, and the next
forwarder removes the directory of one whose process was killed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from urllib.parse import urlsplit

from rtbuild.enginekit import claim_directory, dead_owner_note

#: As the docker CLI: the TCP connect and the ssh handshake together.
CONNECT_TIMEOUT_S = 30
PREFIX = "rtbuild-ssh-"


def ssh_argv(host: str) -> list[str]:
    """The command the docker CLI runs for one connection to ``host`` (``ssh://...``)."""
    parts = urlsplit(host)
    argv = ["ssh", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}", "-T"]
    if parts.username:
        argv += ["-l", parts.username]
    if parts.port:
        argv += ["-p", str(parts.port)]
    return [*argv, "--", parts.hostname or "", "docker system dial-stdio"]


class SSHForwarder:
    """A unix socket whose every connection is one ``ssh ... dial-stdio`` to ``host``."""

    def __init__(self, host: str) -> None:
        self.argv = ssh_argv(host)
        _sweep(tempfile.gettempdir())
        self.directory = tempfile.mkdtemp(prefix=PREFIX)  # 0700: the engine is root's
        claim_directory(self.directory)
        self.path = os.path.join(self.directory, "engine.sock")
        self._log = os.path.join(self.directory, "ssh.log")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(32)
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen[bytes]] = []
        # The ssh processes die with the thread that started them (PR_SET_PDEATHSIG), so
        # with this one, which runs as long as the forwarder does.
        threading.Thread(target=self._serve, name="rtbuild-ssh", daemon=True).start()

    def _serve(self) -> None:
        from rtbuild.enginekit import die_with_parent

        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            with conn, open(self._log, "ab") as log:
                try:
                    proc = subprocess.Popen(
                        self.argv,
                        stdin=conn.fileno(),
                        stdout=conn.fileno(),
                        stderr=log,
                        preexec_fn=die_with_parent,
                        close_fds=True,
                    )
                except OSError as exc:  # no ssh client: the caller sees the connection close
                    log.write(f"cannot run {self.argv[0]}: {exc.strerror or exc}\n".encode())
                    continue
            with self._lock:
                self._procs = [p for p in self._procs if p.poll() is None] + [proc]

    def last_error(self) -> str:
        """ssh's last line on stderr (why a connection failed), or ``""``."""
        with contextlib.suppress(OSError), open(self._log, "rb") as log:
            lines = [line.strip() for line in log.read()[-4096:].decode(errors="replace").splitlines()]
            return next((line for line in reversed(lines) if line), "")
        return ""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            procs, self._procs = self._procs, []
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def _sweep(base: str) -> None:
    """Remove what forwarders of processes that are gone (``kill -9``) left in ``base``."""
    with contextlib.suppress(OSError), os.scandir(base) as entries:
        for entry in entries:
            if entry.name.startswith(PREFIX) and dead_owner_note(entry.path) is not None:
                shutil.rmtree(entry.path, ignore_errors=True)


_forwarders: dict[str, SSHForwarder] = {}
_guard = threading.Lock()


def forwarder_for(host: str) -> SSHForwarder:
    """The process's forwarder to ``host`` (made on first use)."""
    with _guard:
        found = _forwarders.get(host)
        if found is None:
            if not _forwarders:
                atexit.register(close_all)
            found = _forwarders[host] = SSHForwarder(host)
        return found


def last_error(host: str) -> str:
    """Why ssh to ``host`` failed last in this process, if it did."""
    found = _forwarders.get(host)
    return found.last_error() if found is not None else ""


def close_all() -> None:
    with _guard:
        forwarders = list(_forwarders.values())
        _forwarders.clear()
    for forwarder in forwarders:
        forwarder.close()


__all__ = ["CONNECT_TIMEOUT_S", "SSHForwarder", "close_all", "forwarder_for", "last_error", "ssh_argv"]
