"""Name resolution in the simulation (looplet/sim/names.py): getaddrinfo and getnameinfo.

Host names resolve to their addresses, "localhost" to 127.0.0.1, numeric addresses
to themselves; an unknown name fails with socket.gaierror (EAI_NONAME) as with a real
resolver; answers come in glibc's order (stream, datagram, raw) and respect the
type, protocol and family asked for; getnameinfo names the host.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from looplet.sim import Simulation


def resolve(*calls: tuple[str, tuple[Any, ...], dict[str, Any]]) -> list[Any]:
    async def client() -> list[Any]:
        loop = asyncio.get_running_loop()
        answers = []
        for method, args, kwargs in calls:
            try:
                answers.append(await getattr(loop, method)(*args, **kwargs))
            except socket.gaierror as exc:
                answers.append(("gaierror", exc.errno, str(exc)))
        return answers

    async def idle() -> None:
        await asyncio.sleep(10)

    sim = Simulation()
    sim.host("db", idle)
    sim.client("app", client)
    return sim.run()["app"]


def test_names_and_numbers_resolve() -> None:
    stream = {"type": socket.SOCK_STREAM}
    answers = resolve(
        ("getaddrinfo", ("db", 5432), stream),
        ("getaddrinfo", ("localhost", "80"), stream),
        ("getaddrinfo", ("10.0.0.77", 1), stream),
        ("getaddrinfo", (b"app", None), stream),
        ("getaddrinfo", (None, 80), {"type": socket.SOCK_STREAM, "flags": socket.AI_PASSIVE}),
    )
    assert [a[0][4] for a in answers] == [
        ("10.0.0.1", 5432),
        ("127.0.0.1", 80),
        ("10.0.0.77", 1),
        ("10.0.0.2", 0),
        ("0.0.0.0", 80),
    ]
    assert answers[0] == [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("10.0.0.1", 5432))]


def test_type_and_protocol_narrow_the_answer() -> None:
    (every, udp) = resolve(
        ("getaddrinfo", ("db", 53), {}),
        ("getaddrinfo", ("db", 53), {"proto": socket.IPPROTO_UDP}),
    )
    assert [(a[1], a[2]) for a in every] == [
        (socket.SOCK_STREAM, socket.IPPROTO_TCP),
        (socket.SOCK_DGRAM, socket.IPPROTO_UDP),
        (socket.SOCK_RAW, 0),
    ]
    assert [(a[1], a[2]) for a in udp] == [(socket.SOCK_DGRAM, socket.IPPROTO_UDP)]


def test_what_cannot_resolve_fails_as_a_resolver_does() -> None:
    answers = resolve(
        ("getaddrinfo", ("nowhere.example", 80), {}),
        ("getaddrinfo", ("db", "http"), {}),
        ("getaddrinfo", ("::1", 80), {}),
        ("getaddrinfo", ("db", 80), {"family": socket.AF_INET6}),
    )
    assert answers == [
        ("gaierror", socket.EAI_NONAME, "[Errno -2] Name or service not known"),
        ("gaierror", socket.EAI_SERVICE, "[Errno -8] Servname not supported for ai_socktype"),
        ("gaierror", socket.EAI_FAMILY, "[Errno -6] ai_family not supported"),
        ("gaierror", socket.EAI_ADDRFAMILY, "[Errno -9] Address family for hostname not supported"),
    ]


def test_getnameinfo_names_the_host() -> None:
    assert resolve(
        ("getnameinfo", (("10.0.0.1", 5432),), {}),
        ("getnameinfo", (("127.0.0.1", 80),), {}),
        ("getnameinfo", (("10.9.9.9", 1),), {}),
    ) == [("db", "5432"), ("localhost", "80"), ("10.9.9.9", "1")]


def test_resolving_needs_no_host() -> None:
    from looplet.sim.names import getaddrinfo
    from looplet.sim.network import LinkConfig, Network

    with pytest.raises(TypeError, match="must be string or None"):
        getaddrinfo(Network(0, LinkConfig()), 12, 80, 0, 0, 0, 0)


def test_byte_ports_and_impossible_socket_types() -> None:
    answers = resolve(
        ("getaddrinfo", ("db", b"80"), {"type": socket.SOCK_STREAM}),
        ("getaddrinfo", ("db", 80), {"type": socket.SOCK_STREAM, "proto": socket.IPPROTO_UDP}),
    )
    assert answers[0][0][4] == ("10.0.0.1", 80)
    assert answers[1] == ("gaierror", socket.EAI_SOCKTYPE, "[Errno -7] ai_socktype not supported")
