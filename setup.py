"""Build glue: compile looplet's hot modules with mypyc, when asked to.

The compiled modules are built from the very same annotated source as the pure-Python
package; `looplet.COMPILED` says which one is running. Every build is pure Python,
needing no compiler and no mypy, unless LOOPLET_COMPILE=1: then the build asks for
mypy (which provides mypyc) as a build requirement and compiles the hot modules where
a C compiler is present. LOOPLET_PURE=1 forces a pure build even then. An editable
install (`pip install -e .`) follows the same rule, so an edited .py file is what runs.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig

from setuptools import setup

# The modules on the hot path: each tick, each readiness event, each timer. Not
# clock.py: Clock is meant to be subclassed (testing.VirtualClock, users' clocks), and
# interpreted classes cannot inherit from compiled ones.
HOT_MODULES = [
    "looplet/engine/scheduler.py",
    "looplet/engine/timers.py",
    "looplet/engine/waker.py",
    "looplet/engine/reactor/base.py",
    "looplet/engine/reactor/epoll.py",
    "looplet/engine/reactor/poll.py",
]
# Not the transports. mypyc's classes that inherit from asyncio's transport classes
# (and were subclassed by an interpreted class, for weak references) are traversed twice
# by the garbage collector: on 3.11 it crashed in our suite, and on 3.12+ a transport
# whose protocol holds it (nearly every protocol) was never collected when left
# unclosed, keeping its socket open (tests/reliability/test_faults.py found it).


def _compiler_present() -> bool:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None


def _want_compiled() -> bool:
    if os.environ.get("LOOPLET_COMPILE") != "1" or os.environ.get("LOOPLET_PURE") == "1":
        return False
    return sys.implementation.name == "cpython" and _compiler_present()


#: mypy (mypyc) is a build requirement only of a compiled build: setuptools' build
#: backend reports setup_requires to the frontend, which installs it before building.
MYPY_REQUIREMENT = "mypy>=1.10"


ext_modules = []
if _want_compiled():
    try:
        from mypyc.build import mypycify
    except ImportError:  # setuptools runs this file first to ask what the build needs: mypy is not in yet
        pass
    else:
        ext_modules = mypycify(HOT_MODULES, opt_level="3")

setup(
    ext_modules=ext_modules,
    setup_requires=[MYPY_REQUIREMENT] if _want_compiled() else [],
)
