"""The downstream projects: which release, which of its tests, and how they are run.

Role: the one place that says what `python -m downstream` tests. Each project is a
pinned release whose sdist carries its test suite; the project itself and its test
dependencies are installed from PyPI (wheels) at the exact versions of the lock file
`downstream/requirements/NAME.txt`, in a venv of its own.

Invariant owned here: everything a run depends on is pinned (the sdist by version and
sha256, every installed distribution by version), and every test subset is a rule
about files or parameters, stated with its reason, applied identically to both loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

REQUIREMENTS_DIR: Final = Path(__file__).resolve().parent / "requirements"


@dataclass(frozen=True)
class Project:
    name: str
    version: str
    #: sha256 of the sdist, checked after every download.
    sdist_sha256: str
    #: The importable name: the run checks it came from the venv, not the sdist.
    module: str
    #: What the selection is and why (shown by --list, and in docs/downstream.md).
    selection: str
    #: pytest arguments after the common ones: the test paths and the project's options.
    pytest_args: tuple[str, ...]
    #: The distributions the lock file was made from (`--update-locks`).
    direct_requirements: tuple[str, ...]
    #: Paths in the unpacked sdist removed before the run: the project's own source,
    #: so that only the installed wheel can be imported.
    remove: tuple[str, ...] = ()
    #: Parameter ids whose tests are deselected on both loops.
    deselect: tuple[str, ...] = ()
    #: Parameter ids deselected on both loops where `localhost` has no IPv6 address
    #: (the tests bind or connect to ("localhost", port) over IPv6, so they fail on
    #: every loop there, and the runner says it deselected them).
    deselect_without_ipv6_localhost: tuple[str, ...] = ()
    #: A server each run needs, started by the runner on a loopback port, one per run
    #: (the two loops' runs must not share a database): "redis" or None. Its URL
    #: replaces `{redis_url}` in pytest_args.
    service: str | None = None
    #: Seconds for one whole pytest run before it is killed (the per-test limit is
    #: pytest-timeout's, in the common arguments).
    run_timeout: float = 300.0
    notes: tuple[str, ...] = field(default=())

    @property
    def requirements(self) -> Path:
        return REQUIREMENTS_DIR / f"{self.name}.txt"

    @property
    def sdist_name(self) -> str:
        return f"{self.name}-{self.version}.tar.gz"


PROJECTS: Final[tuple[Project, ...]] = (
    Project(
        name="anyio",
        version="4.16.0",
        sdist_sha256="59bb03251907983d1603d27c3087ddb1e93299ea2163adcdba37899a4fb12ffb",
        module="anyio",
        selection=(
            "tests/ on the asyncio backend with anyio's own loop factory (`asyncio`) and with the "
            "eager task factory (`asyncio+eager`); not the trio or uvloop backends (other loops), "
            "not test_pytest_plugin.py (anyio's pytest plugin run in nested pytester sessions) nor "
            "test_lazyimport.py (import machinery in subprocesses): neither tests a loop, and they take 45 s"
        ),
        pytest_args=(
            "tests",
            "--ignore=tests/test_pytest_plugin.py",
            "--ignore=tests/test_lazyimport.py",
        ),
        deselect=("trio", "asyncio+uvloop"),
        # Where localhost is 127.0.0.1 only (this CI machine's /etc/hosts), these fail on
        # both loops, and anyio's server_sock fixture leaks the socket it could not
        # bind: its ResourceWarning then fails whichever test the garbage collector
        # happens to run in, on either loop.
        deselect_without_ipv6_localhost=("ipv6",),
        direct_requirements=(
            "anyio==4.16.0",
            "blockbuster==1.5.29",
            "hypothesis==6.170.27",
            "psutil==7.2.2",
            "pytest==9.2.0",
            "pytest-mock==3.17.0",
            "pytest-timeout==2.4.0",
            "trustme==1.2.1",
            "truststore==0.10.5",
        ),
    ),
    Project(
        name="aiohttp",
        version="3.14.5",
        sdist_sha256="5558a7f5a05af9ecf744af91e5baefc436f93c9333e656c27ec253f9a6bbe178",
        module="aiohttp",
        selection=(
            "the test files that run real clients and servers on the loop: client/web/websocket/"
            "sendfile functional tests, the connector, the proxy functional tests (proxy.py on "
            "loopback), run_app (signals, shutdown), web_server, web_runner, test_utils, loop; "
            "the rest of the suite (parsers, cookies, multipart, helpers: 4,500 tests, 20 minutes) "
            "barely touches the loop"
        ),
        pytest_args=(
            # aiohttp's addopts ask for xdist, coverage and doctests: replaced by the
            # options that matter here (its marker selection, strict markers).
            "-o",
            "addopts=",
            "-m",
            "not dev_mode and not autobahn and not internal",
            "--strict-markers",
            # Skips the gc.collect() after every test's loop (3x faster); the loop is
            # still stopped and closed as always.
            "--aiohttp-fast",
            "tests/test_client_functional.py",
            "tests/test_web_functional.py",
            "tests/test_client_ws_functional.py",
            "tests/test_web_websocket_functional.py",
            "tests/test_web_sendfile_functional.py",
            "tests/test_connector.py",
            "tests/test_proxy_functional.py",
            "tests/test_run_app.py",
            "tests/test_web_server.py",
            "tests/test_web_runner.py",
            "tests/test_test_utils.py",
            "tests/test_loop.py",
        ),
        remove=("aiohttp",),
        direct_requirements=(
            "aiohttp==3.14.5",
            "aiodns==4.0.4",
            "backports-zstd==1.3.0",
            "blockbuster==1.5.26",
            "brotli==1.2.0",
            # aiohttp's filterwarnings names a coverage warning class: pytest imports it.
            "coverage==7.14.1",
            "freezegun==1.5.5",
            "isal==1.8.0",
            "proxy-py==2.4.10",
            "pytest==9.0.3",
            "pytest-mock==3.15.1",
            "pytest-timeout==2.4.0",
            "trustme==1.2.1",
            "zlib-ng==1.0.0",
        ),
    ),
    Project(
        name="uvicorn",
        version="0.55.0",
        sdist_sha256="b65ae5f0f30cdcbc26a104b93d7d19723aa5f46fec3915a6c247d5795449331c",
        module="uvicorn",
        selection=(
            "tests/ but supervisors/ (reload and multiprocess supervisors run their workers in "
            "child processes on the loop uvicorn picks itself, asyncio.SelectorEventLoop, which "
            "neither swap reaches; 40 s) and benchmarks/ (codspeed benchmarks)"
        ),
        pytest_args=(
            # uvicorn's addopts add `-n 8` (xdist); the rest is kept.
            "-o",
            "addopts=-rxXs --strict-config --strict-markers",
            "tests",
            "--ignore=tests/supervisors",
            "--ignore=tests/benchmarks",
        ),
        remove=("uvicorn",),
        direct_requirements=(
            "uvicorn==0.55.0",
            "a2wsgi==1.10.10",
            "cryptography",
            "httptools",
            "httpx2",
            "python-dotenv",
            "pytest==9.2.0",
            "pytest-mock==3.17.0",
            "pytest-timeout==2.4.0",
            "PyYAML",
            "trustme==1.2.1",
            "watchfiles",
            "websockets",
            "wsproto==1.3.2",
            "zttp",
        ),
    ),
    Project(
        name="redis",
        version="8.2.0",
        sdist_sha256="58b1493d83ba8f0e3ffe6bd781194ca5c01c91267ae03d29c1087b0b3c7d79c9",
        module="redis",
        selection=(
            "tests/test_asyncio (redis-py's asyncio client: pytest-asyncio tests over real connections) "
            "against a standalone redis-server (Debian's) that the runner starts on a loopback port, one "
            "per loop; not the tests marked onlycluster, redismod, ssl or replica, nor test_scenario/ and "
            "test_multidb/: they need servers this job does not run (a cluster, Redis modules, TLS, "
            "replicas, docker fault injection)"
        ),
        pytest_args=(
            # redis-py's addopts is "-s" (no output capture): dropped, the logs stay short.
            "-o",
            "addopts=",
            "--redis-url={redis_url}",
            "-m",
            "not onlycluster and not redismod and not ssl and not replica",
            "tests/test_asyncio",
            "--ignore=tests/test_asyncio/test_scenario",
            "--ignore=tests/test_asyncio/test_multidb",
        ),
        remove=("redis",),
        service="redis",
        direct_requirements=(
            "redis==8.2.0",
            # tests/test_asyncio/test_scenario/conftest.py imports aiohttp, and pytest
            # loads the conftest.py files of test* directories before --ignore applies.
            "aiohttp==3.14.5",
            "async-timeout==5.0.1",
            # redis-entraid caps cryptography below 51.
            "cryptography==50.0.2",
            "numpy==2.5.5",
            "opentelemetry-api==1.45.2",
            "opentelemetry-sdk==1.45.2",
            "packaging==26.4",
            "pybreaker==1.4.1",
            "pytest==9.2.0",
            "pytest-asyncio==1.5.0",
            "pytest-timeout==2.4.0",
            "redis-entraid==1.2.2",
            "ujson==6.1.0",
        ),
    ),
)


def by_name(names: str) -> list[Project]:
    """The projects named in a comma-separated list (all for an empty one), in order."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {p.name: p for p in PROJECTS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise KeyError(f"unknown project(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in wanted] if wanted else list(PROJECTS)
