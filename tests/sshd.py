"""Test helper: a throw-away OpenSSH server on 127.0.0.1 (via scripts/start_sshd.sh).

Used by tests/test_remote.py to test DVC's SSH remote against a real ``sshd``::

    with running_sshd(tmp_path / "sshd") as server:
        url = server.url(tmp_path / "remote")   # ssh://root@127.0.0.1:PORT/abs/path
        ... dvc remote modify --local storage keyfile server.client_key ...

The server accepts only ``server.client_key`` (public-key login; root allowed with
``PermitRootLogin prohibit-password``), uses host keys generated into the state dir,
and is killed when the context exits.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
START_SSHD = REPO_ROOT / "scripts" / "start_sshd.sh"


class SSHDUnavailable(RuntimeError):
    """sshd is not installed and cannot be installed, or it would not start."""


@dataclass(frozen=True)
class SSHServer:
    """A running test sshd."""

    host: str
    port: int
    user: str
    state_dir: Path
    client_key: Path  # private key (no passphrase) accepted by the server
    known_hosts: Path  # "[127.0.0.1]:PORT <host key>" for the OpenSSH client

    def url(self, remote_dir: str | os.PathLike[str]) -> str:
        """``ssh://user@host:port/<absolute remote_dir>`` for ``dvc remote add``."""
        return f"ssh://{self.user}@{self.host}:{self.port}{Path(remote_dir).resolve()}"

    def ssh(self, command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on the server with the OpenSSH client (strict host key check)."""
        return subprocess.run(
            ["ssh", "-i", str(self.client_key), "-p", str(self.port),
             "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
             "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
             f"{self.user}@{self.host}", command],
            capture_output=True, text=True, timeout=timeout, check=False)


def sshd_path() -> str | None:
    """Path of the ``sshd`` binary, or None."""
    found = shutil.which("sshd")
    if found:
        return found
    return "/usr/sbin/sshd" if os.access("/usr/sbin/sshd", os.X_OK) else None


def ensure_sshd_installed(timeout: float = 600) -> None:
    """Install openssh-server with apt-get when ``sshd`` is missing (idempotent).

    Raises
    ------
    SSHDUnavailable
        With the installer's output when it is not possible (no apt-get, not root, no
        package index/network).
    """
    if sshd_path() and shutil.which("ssh-keygen"):
        return
    try:
        proc = subprocess.run(["bash", str(START_SSHD), "--install-only"], capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SSHDUnavailable(f"installing openssh-server took over {timeout:.0f} s") from exc
    if proc.returncode != 0 or not sshd_path():
        raise SSHDUnavailable("sshd is missing and `scripts/start_sshd.sh --install-only` "
                              f"failed (exit {proc.returncode}): {proc.stderr[-800:]}")


def _wait_for_banner(host: str, port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SSHDUnavailable(f"sshd exited with {proc.returncode} before accepting "
                                  "connections")
        try:
            with socket.create_connection((host, port), timeout=2) as sock:
                banner = sock.recv(64)
            if banner.startswith(b"SSH-2.0-"):
                return
            last_error = RuntimeError(f"unexpected banner {banner!r}")
        except OSError as exc:
            last_error = exc
        time.sleep(0.2)
    raise SSHDUnavailable(f"sshd did not answer on {host}:{port} within {timeout:.0f} s "
                          f"({last_error})")


@contextlib.contextmanager
def running_sshd(state_dir: str | os.PathLike[str], timeout: float = 30) -> Iterator[SSHServer]:
    """Start sshd (foreground ``sshd -D -e`` child process) and kill it on exit.

    Parameters
    ----------
    state_dir : path-like
        Receives keys, config, ``known_hosts`` and ``sshd.log`` (its stderr).
    timeout : float
        Seconds to wait for the SSH banner.

    Raises
    ------
    SSHDUnavailable
        When sshd cannot be installed or does not start (see ``sshd.log``).
    """
    ensure_sshd_installed()
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "sshd.log"
    with open(log_path, "w") as log:
        # The script ends with `exec sshd -D -e`, so proc *is* the sshd process.
        proc = subprocess.Popen(["bash", str(START_SSHD), str(state_dir)],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        port_file = state_dir / "port"
        deadline = time.monotonic() + timeout
        while not port_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SSHDUnavailable(f"start_sshd.sh failed (exit {proc.poll()}): "
                                      f"{log_path.read_text()[-800:]}")
            time.sleep(0.1)
        port = int(port_file.read_text())
        try:
            _wait_for_banner("127.0.0.1", port, proc, max(1.0, deadline - time.monotonic()))
        except SSHDUnavailable as exc:
            raise SSHDUnavailable(f"{exc}; log: {log_path.read_text()[-800:]}") from exc
        yield SSHServer(host="127.0.0.1", port=port, user=getpass.getuser(),
                        state_dir=state_dir, client_key=state_dir / "client_key",
                        known_hosts=state_dir / "known_hosts")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
