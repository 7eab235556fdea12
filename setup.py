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

# What is compiled is whole layers, not a list: the engine (looplet/engine/, the
# reactor included), which every tick, readiness event and timer runs through, and
# the transports, which every read and write runs through. Each module left out
# has a reason:
LAYERS = ("looplet/engine", "looplet/transports")
NOT_COMPILED = {
    # Clock is meant to be subclassed (testing.VirtualClock, users' clocks), and
    # interpreted classes cannot inherit from compiled ones.
    "looplet/engine/clock.py": "subclassed by interpreted code",
    # asyncio's subprocess transport with looplet's _start: one call per child.
    "looplet/transports/subprocess.py": "nothing on a hot path",
}
# The transports derive from asyncio's transport classes, so they are compiled as
# regular Python classes with compiled methods (`mypyc_attr(native_class=False)`,
# looplet/_mypyc.py): as native classes over those bases, their instances were
# traversed twice by the garbage collector, which crashed it on 3.11 and, on 3.12+,
# never collected an unclosed transport held by its protocol, so its socket stayed
# open (the fault tests in tests/loop/test_lifecycle.py found it). What they read per
# message sits in a native record they hold instead (looplet/transports/state.py).


def _layer_modules() -> list[str]:
    found = []
    for layer in LAYERS:
        for folder, _dirs, files in os.walk(layer):
            for name in files:
                path = os.path.join(folder, name).replace(os.sep, "/")
                # A package's __init__ holds its docstring and re-exports: nothing hot.
                if name.endswith(".py") and name != "__init__.py" and path not in NOT_COMPILED:
                    found.append(path)
    return sorted(found)


HOT_MODULES = _layer_modules()


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
