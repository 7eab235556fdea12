"""TLS on both loops (looplet/endpoints/tls.py): ssl= connections and servers, start_tls, handshake failures.

Certificates come from trustme (a throwaway CA per module); nothing leaves loopback.

Verification by default, as asyncio verifies: a client checks the server's certificate
chain and its name. A certificate from a CA the client does not trust fails with
SSLCertVerificationError (verify code 20), a name the certificate does not carry fails
with one too (verify code 62, hostname mismatch), both with an explicit default context
and with `ssl=True`. `ssl=True` means the system's default trust store (shown by
pointing SSL_CERT_FILE at the test CA, which then makes the same connection succeed),
the host as the name to check, and no name check, but still a chain check, when
`server_hostname=""`. There the server runs on a thread of its own with the ssl
module, so only the loop under test is on the client side.

Also start_tls's argument checks, with asyncio's messages, and its bad-input cases
(tests/bad_input.py).
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from bad_input import pytest_generate_tests, test_bad_input_fails_as_on_asyncio  # noqa: F401
from support import FakeTransport, Proto, raises


@pytest.fixture(scope="module")
def trustme() -> Any:
    # Only the tests that need certificates skip without trustme.
    return pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def ca(trustme: Any) -> Any:
    return trustme.CA()


@pytest.fixture
def server_ctx(ca: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture
def client_ctx(ca: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


async def settle() -> None:
    """Let the server side finish its own end of a failed handshake (a task of its own)."""
    me = asyncio.current_task()
    for _ in range(500):
        if all(t is me or t.done() for t in asyncio.all_tasks()):
            return
        await asyncio.sleep(0.01)


def take_server_handshake_report(loop: asyncio.AbstractEventLoop, loop_errors: Any) -> None:
    """In debug mode, both loops report the server's end of a handshake that the client
    broke off (asyncio reports errors making an accepted connection's transport only
    then); otherwise there is no report."""
    if loop.get_debug():
        loop_errors.take("^Error on transport creation for incoming connection", (ConnectionError, ssl.SSLError))


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


def test_tls_echo_with_streams(
    loop: asyncio.AbstractEventLoop, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
            )
            assert writer.get_extra_info("peercert")["subjectAltName"]
            assert writer.get_extra_info("cipher") is not None
            assert isinstance(writer.get_extra_info("ssl_object"), ssl.SSLObject)
            payload = b"secret" * 50_000
            writer.write(payload)
            got = await reader.readexactly(len(payload))
            assert got == payload
            writer.close()
            await writer.wait_closed()

    loop.run_until_complete(main())


def test_certificate_is_verified_by_default(
    loop: asyncio.AbstractEventLoop, server_ctx: ssl.SSLContext, loop_errors: Any
) -> None:
    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        async with server:
            port = server.sockets[0].getsockname()[1]
            # The default context does not trust the test CA: the handshake must fail.
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.open_connection(
                    "127.0.0.1", port, ssl=ssl.create_default_context(), server_hostname="localhost"
                )
            await settle()

    loop.run_until_complete(main())
    take_server_handshake_report(loop, loop_errors)


def test_wrong_hostname_is_rejected(
    loop: asyncio.AbstractEventLoop, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, loop_errors: Any
) -> None:
    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        async with server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname="other.example")
            await settle()

    loop.run_until_complete(main())
    take_server_handshake_report(loop, loop_errors)


def test_handshake_timeout(loop: asyncio.AbstractEventLoop, client_ctx: ssl.SSLContext) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # a plain TCP server that never answers the ClientHello
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises((TimeoutError, ConnectionError)):
                await asyncio.open_connection(
                    "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost", ssl_handshake_timeout=0.1
                )

    loop.run_until_complete(main())


def test_start_tls_upgrades_both_sides(
    loop: asyncio.AbstractEventLoop, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"OK\n")
        await writer.drain()
        await writer.start_tls(server_ctx)
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"STARTTLS\n")
            assert await reader.readline() == b"OK\n"
            await writer.start_tls(client_ctx, server_hostname="localhost")
            assert writer.get_extra_info("sslcontext") is client_ctx
            writer.write(b"encrypted\n")
            assert await reader.readline() == b"ENCRYPTED\n"
            writer.close()
            await writer.wait_closed()

    loop.run_until_complete(main())


def test_start_tls_rejects_non_context(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            with pytest.raises(TypeError, match="SSLContext"):
                await loop.start_tls(writer.transport, writer.transport.get_protocol(), "not a context")  # type: ignore[arg-type]
            writer.close()
            await writer.wait_closed()

    loop.run_until_complete(main())


# -- verification by default, compared with asyncio --------------------------------------


Loop = asyncio.AbstractEventLoop


# OpenSSL's X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, X509_V_ERR_HOSTNAME_MISMATCH
# and X509_V_ERR_IP_ADDRESS_MISMATCH.
UNTRUSTED_ISSUER = 20


HOSTNAME_MISMATCH = 62


IP_ADDRESS_MISMATCH = 64


# Not a timing assertion: how long a blocked socket call on a helper thread may wait
# before the test gives up on it instead of hanging.
STUCK_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def localhost_server_ctx(ca: Any) -> ssl.SSLContext:
    # A certificate for the name "localhost" only: not for 127.0.0.1.
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(ctx)
    return ctx


@pytest.fixture
def trust_test_ca(ca: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the test CA the default trust store (OpenSSL reads SSL_CERT_FILE each time a
    default context loads its verify paths)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ca.pem")
        ca.cert_pem.write_to_path(path)
        monkeypatch.setenv("SSL_CERT_FILE", path)
        yield


class TLSServer:
    """A blocking TLS server on a thread: one connection, one handshake, read to EOF.

    `handshake` is "ok", or the exception the server's side of the handshake raised.
    """

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(STUCK_TIMEOUT)
        self.port: int = self.sock.getsockname()[1]
        self.handshake: object = None
        self.thread = threading.Thread(target=self._serve, name="tls-server")
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError as exc:
            self.handshake = exc
            return
        conn.settimeout(STUCK_TIMEOUT)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                self.handshake = "ok"
                while tls.recv(4096):
                    pass
        except OSError as exc:  # ssl.SSLError included; the client's alert arrives here
            if self.handshake is None:
                self.handshake = exc
        finally:
            conn.close()

    async def finished(self) -> None:
        """Wait, without blocking the loop (it has to close the client's end), for the
        server's thread to finish."""
        await asyncio.to_thread(self.thread.join, STUCK_TIMEOUT)
        assert not self.thread.is_alive(), "the TLS server's thread is stuck"
        self.sock.close()


class Lost(asyncio.Protocol):
    def __init__(self) -> None:
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(None)


async def tls_connect(server_ctx: ssl.SSLContext, host: str, **kwargs: Any) -> int | None:
    """Connect to a fresh TLS server; None if it worked, else the verify code of the
    SSLCertVerificationError the loop raised (any other exception propagates)."""
    loop = asyncio.get_running_loop()
    server = TLSServer(server_ctx)
    code: int | None = None
    try:
        transport, proto = await loop.create_connection(Lost, host, server.port, **kwargs)
    except ssl.SSLCertVerificationError as exc:
        code = exc.verify_code
    else:
        transport.close()
        await proto.lost
    finally:
        await server.finished()
    if code is None:
        assert server.handshake == "ok"
    else:
        # The server saw the client give up: the client refused the handshake.
        assert isinstance(server.handshake, ssl.SSLError), server.handshake
    return code


# (ssl=, host, server_hostname=, the test CA in the default trust store) -> verify code
# (None: the connection is made). A name may only be given with ssl.
TLS_CASES: dict[str, tuple[Any, str, str | None, bool, int | None]] = {
    "default-context-untrusted-ca": ("default", "127.0.0.1", "localhost", False, UNTRUSTED_ISSUER),
    "default-context-wrong-name": ("trusting", "127.0.0.1", "wrong.example", False, HOSTNAME_MISMATCH),
    "default-context-right-name": ("trusting", "127.0.0.1", "localhost", False, None),
    "ssl-true-untrusted-ca": (True, "localhost", None, False, UNTRUSTED_ISSUER),
    "ssl-true-trusted-ca": (True, "localhost", None, True, None),
    # The host is the name checked: the certificate does not name 127.0.0.1.
    "ssl-true-ip-host-not-in-certificate": (True, "127.0.0.1", None, True, IP_ADDRESS_MISMATCH),
    "ssl-true-wrong-server-hostname": (True, "localhost", "wrong.example", True, HOSTNAME_MISMATCH),
    # An empty name turns the name check off, not the chain check.
    "ssl-true-empty-name-trusted-ca": (True, "127.0.0.1", "", True, None),
    "ssl-true-empty-name-untrusted-ca": (True, "127.0.0.1", "", False, UNTRUSTED_ISSUER),
}


@pytest.mark.parametrize("case", list(TLS_CASES))
def test_tls_verifies_certificates_and_names_by_default(
    loop: Loop,
    run: Callable[..., Any],
    ca: Any,
    localhost_server_ctx: ssl.SSLContext,
    request: pytest.FixtureRequest,
    case: str,
) -> None:
    ssl_arg, host, server_hostname, trusted, expected = TLS_CASES[case]
    if trusted:
        request.getfixturevalue("trust_test_ca")
    if ssl_arg == "default":
        ssl_arg = ssl.create_default_context()
    elif ssl_arg == "trusting":
        ssl_arg = ssl.create_default_context()
        ca.configure_trust(ssl_arg)
    kwargs: dict[str, Any] = {"ssl": ssl_arg}
    if server_hostname is not None:
        kwargs["server_hostname"] = server_hostname
    assert run(tls_connect(localhost_server_ctx, host, **kwargs)) == expected


def test_default_client_context_is_strict(loop: Loop, run: Callable[..., Any]) -> None:
    """What `ssl=True` hands the handshake: certificates required, names checked, on both."""
    seen: list[ssl.SSLContext] = []
    real = ssl.create_default_context

    def spy(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        ctx = real(*args, **kwargs)
        seen.append(ctx)
        return ctx

    async def main() -> None:
        server = TLSServer(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ssl, "create_default_context", spy)
            # The server has no certificate: the handshake fails whatever the context.
            with pytest.raises(ssl.SSLError):
                await loop.create_connection(asyncio.Protocol, "localhost", server.port, ssl=True)
        await server.finished()

    run(main())
    assert seen, "ssl=True did not make a default context"
    assert [(c.verify_mode, c.check_hostname) for c in seen] == [(ssl.CERT_REQUIRED, True)]


# -- start_tls argument checks -----------------------------------------------------------


def test_start_tls_needs_ssl_context(loop, run):
    with raises(TypeError, "sslcontext is expected to be an instance of ssl.SSLContext, got True"):
        run(loop.start_tls(FakeTransport(), Proto(), True))


def test_start_tls_unsupported_transport(loop, run):
    transport = FakeTransport()
    with raises(TypeError, f"transport {transport!r} is not supported by start_tls()"):
        run(loop.start_tls(transport, Proto(), ssl.create_default_context()))
