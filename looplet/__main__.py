"""`python -m looplet script.py [args...]`: run a script with looplet as its event loop.

The script runs as `__main__`, exactly as `python script.py` would run it, after
looplet's policy has made looplet the loop of `asyncio.run()`, `asyncio.Runner()` and
`asyncio.new_event_loop()`. `-m module` runs a module the same way, and `-c code`
runs code as `python -c` does; a script or module that cannot be found is reported as
the interpreter reports it, with its exit status. `--version` prints looplet's version.

A program that picks its own loop with a loop factory (`asyncio.run(main(),
loop_factory=X)`, `asyncio.Runner(loop_factory=X)`, as uvicorn and hypercorn's uvloop
worker do) bypasses the policy. Under `-m looplet` it runs on looplet all the same:
the user asked for looplet on the command line, and a server that quietly ran on
uvloop would make the command lie. A factory whose loop is a looplet loop (a virtual
clock, a reactor of the program's choice) is kept; any other loop it made is closed,
looplet's replaces it, and stderr says so once per process, with the way to keep the
program's own loop. (`uvloop.run()` then refuses looplet's loop, with its own error.)

The invariant owned here: every loop an asyncio runner makes is a looplet loop, and
the script otherwise runs unchanged and sees no warning of looplet's making. A script
that calls `asyncio.run(main())` can only be reached through asyncio's event loop
policy, deprecated from Python 3.14 on; the policy is installed with
`use_looplet_policy()`, which uses the spellings asyncio itself uses and does not
warn: the user chose `-m looplet`, not a deprecated API they could replace.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import runpy
import sys
import types
from collections.abc import Callable
from typing import Any

from looplet.loop import EventLoop
from looplet.policy import use_looplet_policy
from looplet.runner import new_event_loop

USAGE = (
    "usage: python -m looplet script.py [args...]  |  python -m looplet -m module [args...]\n"
    "       python -m looplet -c code [args...]    |  python -m looplet --version"
)
#: Options `python -m looplet` takes before the program; anything else starting with
#: "-" is a usage error, not a file name.
OPTIONS = ("-m", "-c", "-h", "--help", "--version")


def _python_says(message: str) -> None:
    # How the interpreter itself reports a program it cannot start: its own path first.
    print(f"{sys.executable or 'python'}: {message}", file=sys.stderr, flush=True)


LoopFactory = Callable[[], asyncio.AbstractEventLoop]

#: Whether stderr was told that a program's own loop factory was overridden.
_told = False


def _name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def on_looplet(factory: LoopFactory) -> LoopFactory:
    """`factory`, made to return a looplet loop: its own if it is one, else looplet's."""

    def looplet_loop() -> asyncio.AbstractEventLoop:
        global _told
        loop = factory()
        if isinstance(loop, EventLoop):
            return loop
        loop.close()
        if not _told:
            _told = True
            print(
                f"python -m looplet: the program's loop_factory ({_name(factory)}) made a {_name(type(loop))}; "
                "it runs on looplet.EventLoop instead (without -m looplet it keeps its own loop)",
                file=sys.stderr,
                flush=True,
            )
        return new_event_loop()

    looplet_loop.__qualname__ = looplet_loop.__name__ = f"on_looplet({_name(factory)})"
    return looplet_loop


def run_every_runner_on_looplet() -> None:
    """Make `asyncio.Runner` (and so `asyncio.run`) wrap any loop factory with `on_looplet`.

    Patched on the class, for this process only: `asyncio.run` makes its Runner through
    the module global, and libraries subclass Runner or import it by name.
    """
    runner_init = asyncio.Runner.__init__

    def __init__(self: asyncio.Runner, *, debug: bool | None = None, loop_factory: LoopFactory | None = None) -> None:
        if loop_factory is not None:
            loop_factory = on_looplet(loop_factory)
        runner_init(self, debug=debug, loop_factory=loop_factory)

    asyncio.Runner.__init__ = __init__  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    """Run the program the command line names; the exit status, as `python` would give it.

    `script.py`, `-m module` and `-c code` behave as they do after `python`, a file or
    module that cannot be found included (the interpreter's own message, status 2 for
    a file, 1 for a module); `--version` prints looplet's version.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not args else sys.stdout)
        return 2 if not args else 0
    if args[0] == "--version":
        from looplet import __version__

        print(f"looplet {__version__} (Python {sys.version.split()[0]})")
        return 0
    if args[0].startswith("-") and args[0] not in OPTIONS:
        print(f"python -m looplet: unknown option {args[0]}\n{USAGE}", file=sys.stderr)
        return 2
    if args[0] in ("-m", "-c") and len(args) < 2:
        print(f"python -m looplet: {args[0]} needs an argument\n{USAGE}", file=sys.stderr)
        return 2
    if args[0] == "-m":
        try:
            found = importlib.util.find_spec(args[1])
        except (ImportError, ValueError):
            found = None
        if found is None:
            _python_says(f"No module named {args[1]}")
            return 1
    elif args[0] != "-c" and not os.path.isdir(args[0]):
        try:
            with open(args[0], "rb"):
                pass
        except OSError as exc:
            _python_says(f"can't open file {os.path.abspath(args[0])!r}: [Errno {exc.errno}] {exc.strerror}")
            return 2
    try:
        use_looplet_policy()
    except RuntimeError as exc:
        print(f"python -m looplet: {exc}", file=sys.stderr)
        return 2
    run_every_runner_on_looplet()
    if args[0] == "-m":
        sys.argv = args[1:]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    elif args[0] == "-c":
        # As `python -c code args...`: argv[0] is "-c", the current directory comes first
        # on sys.path (as ""), and the code runs as a fresh __main__.
        sys.argv = ["-c", *args[2:]]
        sys.path[0] = ""
        main_module = types.ModuleType("__main__")
        sys.modules["__main__"] = main_module
        exec(compile(args[1], "<string>", "exec"), main_module.__dict__)
    else:
        sys.argv = args
        # As `python script.py` does: the script's directory comes first on sys.path,
        # where `-m looplet` put the current directory.
        sys.path[0] = os.path.dirname(os.path.abspath(args[0]))
        runpy.run_path(args[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
