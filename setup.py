"""Build glue: compile looplet's hot modules with mypyc when a C compiler is present.

The compiled modules are built from the very same annotated source as the pure-Python
package; `looplet.COMPILED` says which one is running. A wheel (`pip install .`) is
compiled where a C compiler and mypyc work and pure Python otherwise; an editable
install (`pip install -e .`) stays pure unless LOOPLET_COMPILE=1, so that an edited
.py file is what runs. LOOPLET_PURE=1 forces a pure build.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig

from setuptools import setup
from setuptools.command.build_ext import build_ext

# What is compiled is a layer, not a list: the engine (looplet/engine/, the reactor
# included), which every tick, readiness event and timer runs through. Each module
# left out has a reason:
ENGINE = "looplet/engine"
NOT_COMPILED = {
    # Clock is meant to be subclassed (testing.VirtualClock, users' clocks), and
    # interpreted classes cannot inherit from compiled ones.
    "looplet/engine/clock.py": "subclassed by interpreted code",
    # Subclasses of asyncio.Handle: mypyc's classes cannot derive from it.
    "looplet/engine/handles.py": "derives from asyncio's Handle",
}


def _engine_modules() -> list[str]:
    found = []
    for folder, _dirs, files in os.walk(ENGINE):
        for name in files:
            path = os.path.join(folder, name).replace(os.sep, "/")
            # A package's __init__ holds its docstring and re-exports: nothing hot.
            if name.endswith(".py") and name != "__init__.py" and path not in NOT_COMPILED:
                found.append(path)
    return sorted(found)


HOT_MODULES = _engine_modules()

# Not the transports. mypyc's classes that inherit from asyncio's transport classes
# (and were subclassed by an interpreted class, for weak references) are traversed twice
# by the garbage collector: on 3.11 it crashed in our suite, and on 3.12+ a transport
# whose protocol holds it (nearly every protocol) was never collected when left
# unclosed, keeping its socket open (a fault test found it, now in tests/loop/test_lifecycle.py).


def _compiler_present() -> bool:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None


def _want_compiled() -> bool:
    if os.environ.get("LOOPLET_PURE") == "1":
        return False
    return sys.implementation.name == "cpython" and _compiler_present()


class EditableStaysPure(build_ext):
    """Skip the compiled modules in an editable install unless asked for them."""

    def run(self) -> None:
        if getattr(self, "editable_mode", False) and os.environ.get("LOOPLET_COMPILE") != "1":
            return
        super().run()


ext_modules = []
if _want_compiled():
    try:
        from mypyc.build import mypycify
    except ImportError:  # no mypyc in the build environment: pure Python
        pass
    else:
        ext_modules = mypycify(HOT_MODULES, opt_level="3")

setup(ext_modules=ext_modules, cmdclass={"build_ext": EditableStaysPure})
