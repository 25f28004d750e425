"""An S3-compatible server for the tests: `moto_server` on 127.0.0.1, started once per test session.

Registered as a pytest plugin from conftest (`pytest_plugins`), so any test can ask for:

- `s3_server`: the running server (`endpoint`, credentials, `client` — a boto3 S3 client);
- `s3_bucket`: a fresh, empty bucket for one test (its name);
- `s3_settings`: `Settings` for a fresh RAT_HOME whose warehouse is `s3://<fresh bucket>/wh`.

The server runs as a subprocess in its own process group and is stopped (by that group's id)
when the test session ends. Tests skip cleanly only when moto is not installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "rat-test-key"
SECRET_KEY = "rat-test-secret"
REGION = "us-east-1"


@dataclass
class S3Server:
    """A running moto server."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"rat-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "", *, markers: bool = False) -> list[str]:
        """Every object key in a bucket (under `prefix`).

        Zero-byte directory markers (`…/`), which pyarrow leaves when it deletes the last file of a
        folder, are left out unless `markers` is set: they hold no data.
        """
        paginator = self.client.get_paginator("list_objects_v2")
        keys = (o["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix) for o in page.get("Contents", []))
        return sorted(k for k in keys if markers or not k.endswith("/"))

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=body)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _moto_command() -> list[str]:
    exe = Path(sys.executable).with_name("moto_server")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("moto_server")
    if found:
        return [found]
    return [sys.executable, "-m", "moto.server"]


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM when pytest dies (even by SIGKILL)."""
    os.setsid()  # its own process group
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def start_s3_server(timeout: float = 30.0, *, env: dict[str, str] | None = None) -> S3Server:
    """Start moto_server on a free 127.0.0.1 port and wait until it answers (`env`: extra settings,
    e.g. `INITIAL_NO_AUTH_ACTION_COUNT`, after which moto enforces IAM policies)."""
    pytest.importorskip("moto", reason="moto[server] is not installed (it is in the `test` extra)")
    pytest.importorskip("boto3", reason="boto3 (installed with moto) is missing")
    port = _free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION, **(env or {})}
    process = subprocess.Popen(
        [*_moto_command(), "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads yet at start; own process group; never outlives a killed test run
    )
    server = S3Server("127.0.0.1", port, process)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with code {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{server.endpoint}/moto-api/", timeout=1):
                return server
        except OSError:
            if time.monotonic() > deadline:
                stop_s3_server(server)
                raise RuntimeError(f"moto_server did not answer on {server.endpoint} within {timeout:.0f} s") from None
            time.sleep(0.1)


def stop_s3_server(server: S3Server) -> None:
    """Stop the server's process group (only the processes this fixture started)."""
    if server.process.poll() is None:
        try:
            os.killpg(server.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = start_s3_server()
    try:
        yield server
    finally:
        stop_s3_server(server)


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh bucket for one test."""
    return s3_server.create_bucket()


@pytest.fixture
def s3_settings(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> Any:
    """Settings for a fresh RAT_HOME whose warehouse is `s3://<fresh bucket>/wh` on the moto server."""
    from ratatouille_nb.settings import Settings

    return Settings.from_env(
        home=str(tmp_path / "rat-home"),
        warehouse=f"s3://{s3_bucket}/wh",
        s3_endpoint=s3_server.endpoint,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        s3_region=s3_server.region,
    )
