"""Fixtures of the endpoints' argument checks: sockets of the wrong kind, a directory.

Each is made after the `loop` fixture and closed before its leak check.
"""

from __future__ import annotations

import socket
import ssl
import tempfile

import pytest


@pytest.fixture
def udp_sock(loop):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        yield sock


@pytest.fixture
def tcp_sock(loop):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        yield sock


@pytest.fixture
def tmpdir_path(loop):
    with tempfile.TemporaryDirectory() as path:
        yield path


@pytest.fixture
def ssl_socket(loop):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    sock = ctx.wrap_socket(socket.socket(), server_hostname="localhost", do_handshake_on_connect=False)
    with sock:
        yield sock
