"""`python -m looplet script.py [args...]`: run a script with looplet as its event loop.

The script runs as `__main__`, exactly as `python script.py` would run it, after
looplet's policy has made looplet the loop of `asyncio.run()`, `asyncio.Runner()` and
`asyncio.new_event_loop()`. `-m module` runs a module the same way.

The invariant owned here: the script runs unchanged and sees no warning of looplet's
making. A script that calls `asyncio.run(main())` can only be reached through
asyncio's event loop policy, deprecated from Python 3.14 on; the policy is installed
with `use_looplet_policy()`, which uses the spellings asyncio itself uses and does not
warn: the user chose `-m looplet`, not a deprecated API they could replace.
"""

from __future__ import annotations

import os
import runpy
import sys

from looplet.policy import use_looplet_policy

USAGE = "usage: python -m looplet script.py [args...]  |  python -m looplet -m module [args...]"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not args else sys.stdout)
        return 2 if not args else 0
    try:
        use_looplet_policy()
    except RuntimeError as exc:
        print(f"python -m looplet: {exc}", file=sys.stderr)
        return 2
    if args[0] == "-m":
        if len(args) < 2:
            print(USAGE, file=sys.stderr)
            return 2
        sys.argv = args[1:]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        # As `python script.py` does: the script's directory comes first on sys.path,
        # where `-m looplet` put the current directory.
        sys.path[0] = os.path.dirname(os.path.abspath(args[0]))
        runpy.run_path(args[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
