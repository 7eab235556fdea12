"""README's "Using looplet with ..." recipes: each runs as written, on looplet.

Role: keep the recipes true. Each test takes its recipe's text from README.md (so a
recipe edited there is the one run), runs it in a subprocess, and checks from inside
the program that a looplet loop ran it: the servers answer a request with the class of
the loop that handled it. A test whose third-party package is missing skips; CI
installs them all (the `test` extras) and runs with --no-skips, where a skip fails.

Waits on the servers are bounded (tests/support.py's HANG_LIMIT): a server that never
comes up fails the test instead of hanging it. The servers listen on 127.0.0.1, on a
port the OS picks.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import HANG_LIMIT, reap

REPO = Path(__file__).resolve().parent.parent
SECTION = "## Using looplet with ..."
LOOPLET_LOOP = "looplet.loop.EventLoop"

# An ASGI application that answers every request with the class of its running loop.
ASGI_APP = """\
import asyncio

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    loop = type(asyncio.get_running_loop())
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": f"{loop.__module__}.{loop.__qualname__}".encode()})
"""


def section() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(SECTION)
    return text[start : text.index("\n## ", start + len(SECTION))]


def recipe(text: str) -> str:
    """`text`, which the README's section must contain word for word."""
    assert text in section(), f"README.md's {SECTION!r} no longer has: {text}"
    return text


def code_block_after(marker: str) -> str:
    """The first ```python block after `marker` in the section."""
    body = section()
    start = body.index(marker)
    found = re.search(r"```python\n(.*?)```", body[start:], flags=re.S)
    assert found, f"no python block after {marker!r}"
    return found.group(1)


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))


def python(command: str) -> list[str]:
    """A README command line `python ...`, as this test's interpreter runs it."""
    words = command.split()
    assert words[0] == "python", command
    return [sys.executable, *words[1:]]


class Output:
    """What a server process printed so far (stdout and stderr, merged)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.text = ""

    def wait_for(self, pattern: str) -> re.Match[str]:
        """Read until `pattern` appears; fail if it has not within HANG_LIMIT seconds."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + HANG_LIMIT
        while True:
            found = re.search(pattern, self.text)
            if found:
                return found
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError(f"no {pattern!r} within {HANG_LIMIT} s; output:\n{self.text}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"exited before printing {pattern!r}; output:\n{self.text}")
            self.text += chunk.decode(errors="replace")

    def rest(self) -> str:
        assert self.proc.stdout is not None
        self.text += self.proc.stdout.read().decode(errors="replace")
        return self.text


@contextlib.contextmanager
def serving(args: list[str], cwd: Path, ready: str) -> Iterator[tuple[str, Output]]:
    """Run a server; yield its URL (group "url" of `ready`) and its output; stop it with SIGTERM."""
    proc = subprocess.Popen(args, cwd=cwd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = Output(proc)
    try:
        yield output.wait_for(ready).group("url"), output
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        reap(proc)
        output.rest()
        proc.stdout.close()  # type: ignore[union-attr]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=HANG_LIMIT) as response:
        return str(response.read().decode())


def asgi_app(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(ASGI_APP)
    return tmp_path


def test_uvicorn_with_looplet_as_its_loop(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn", reason="uvicorn is not installed")
    command = python(recipe("python -m uvicorn app:app --loop looplet:new_event_loop"))
    with serving([*command, "--port", "0"], asgi_app(tmp_path), r"running on (?P<url>http://\S+)") as (url, out):
        assert get(url) == LOOPLET_LOOP
    assert "Traceback" not in out.text
    assert "python -m looplet:" not in out.text


def test_uvicorn_under_python_m_looplet(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn", reason="uvicorn is not installed")
    command = python(recipe("python -m looplet -m uvicorn app:app"))
    with serving([*command, "--port", "0"], asgi_app(tmp_path), r"running on (?P<url>http://\S+)") as (url, out):
        assert get(url) == LOOPLET_LOOP
    # uvicorn's own choice (uvloop if installed, else asyncio's) was replaced, and it says so.
    assert re.search(r"python -m looplet: the program's loop_factory \(\S+\) made a \S+; it runs on looplet", out.text)
    assert "Traceback" not in out.text


def test_uvicorn_run_in_code_with_looplet_as_its_loop(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn", reason="uvicorn is not installed")
    call = recipe('uvicorn.run("app:app", loop="looplet:new_event_loop")')
    (asgi_app(tmp_path) / "serve.py").write_text(f"import uvicorn\n{call[:-1]}, port=0)\n")
    with serving([sys.executable, "serve.py"], tmp_path, r"running on (?P<url>http://\S+)") as (url, out):
        assert get(url) == LOOPLET_LOOP
    assert "Traceback" not in out.text


def test_hypercorn_serve_in_code_with_looplet_run(tmp_path: Path) -> None:
    pytest.importorskip("hypercorn", reason="hypercorn is not installed")
    call = recipe("looplet.run(hypercorn.asyncio.serve(app, hypercorn.Config()))")
    (asgi_app(tmp_path) / "serve.py").write_text(
        "import hypercorn, hypercorn.asyncio, looplet\n"
        "from app import app\n"
        "hypercorn.Config.bind = ['127.0.0.1:0']  # what Config() starts with: the OS picks the port\n"
        f"{call}\n"
    )
    with serving([sys.executable, "serve.py"], tmp_path, r"Running on (?P<url>http://\S+)") as (url, out):
        assert get(url) == LOOPLET_LOOP
    assert "Traceback" not in out.text


def test_hypercorn_under_python_m_looplet(tmp_path: Path) -> None:
    pytest.importorskip("hypercorn", reason="hypercorn is not installed")
    command = python(recipe("python -m looplet -m hypercorn --workers 0 app:app"))
    args = [*command, "--bind", "127.0.0.1:0"]
    with serving(args, asgi_app(tmp_path), r"Running on (?P<url>http://\S+)") as (url, out):
        assert get(url) == LOOPLET_LOOP
    assert "Traceback" not in out.text
    assert "python -m looplet:" not in out.text


def test_gunicorn_with_a_looplet_uvicorn_worker(tmp_path: Path) -> None:
    pytest.importorskip("gunicorn", reason="gunicorn is not installed")
    pytest.importorskip("uvicorn_worker", reason="uvicorn-worker is not installed")
    (asgi_app(tmp_path) / "looplet_worker.py").write_text(code_block_after("**gunicorn with uvicorn's worker.**"))
    command = python(recipe("python -m gunicorn -k looplet_worker.LoopletWorker app:app"))
    args = [*command, "--bind", "127.0.0.1:0", "--workers", "1", "--control-socket", str(tmp_path / "ctl.sock")]
    with serving(args, tmp_path, r"Listening at: (?P<url>http://\S+)") as (url, out):
        out.wait_for("Application startup complete")
        assert get(url) == LOOPLET_LOOP
    assert "Traceback" not in out.text


def test_aiohttp_run_app_on_a_looplet_loop(tmp_path: Path) -> None:
    pytest.importorskip("aiohttp", reason="aiohttp is not installed")
    code = code_block_after("**aiohttp.**")
    assert "port=8080" in code
    # The OS picks the port: another program here may hold 8080.
    (tmp_path / "server.py").write_text(code.replace("port=8080", "port=0"))
    with serving([sys.executable, "server.py"], tmp_path, r"Running on (?P<url>http://\S+) ") as (url, out):
        assert get(url) == "EventLoop"
    assert "Traceback" not in out.text


def test_anyio_run_with_looplet_loop_factory(tmp_path: Path) -> None:
    pytest.importorskip("anyio", reason="anyio is not installed")
    code = code_block_after("**anyio.**")
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=HANG_LIMIT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "EventLoop\n"


def test_pytest_asyncio_with_looplet(tmp_path: Path) -> None:
    pytest.importorskip("pytest_asyncio", reason="pytest-asyncio is not installed")
    command = python(recipe("python -m pytest --looplet"))
    (tmp_path / "test_loop.py").write_text(
        "import asyncio, pytest\n\n"
        "@pytest.mark.asyncio\n"
        "async def test_runs_on_looplet():\n"
        "    assert type(asyncio.get_running_loop()).__module__ == 'looplet.loop'\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    proc = subprocess.run(
        [*command, "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
    assert "looplet: 1 pytest-asyncio test ran on looplet.EventLoop" in proc.stdout


REPL_INPUT = "import asyncio\nasync def which(): return type(asyncio.get_running_loop()).__name__\n\nawait which()\n"


@pytest.mark.parametrize("repl", ["asyncio", "IPython"], ids=["repl_asyncio", "repl_ipython"])
def test_repl_top_level_await_on_looplet(repl: str, tmp_path: Path) -> None:
    if repl == "IPython":
        pytest.importorskip("IPython", reason="IPython is not installed")
    command = python(recipe(f"python -m looplet -m {repl}"))
    extra = ["--quick", "--no-banner", "--colors=NoColor", "--simple-prompt"] if repl == "IPython" else []
    proc = subprocess.run(
        [*command, *extra],
        input=REPL_INPUT,
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "'EventLoop'" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
