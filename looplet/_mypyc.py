"""What the mypyc build needs to know of a class, and nothing at run time.

`mypyc_attr(native_class=False)` tells mypyc to compile a class's methods but keep
the class a regular Python class: the transports, which derive from asyncio's
transport classes. Compiled as native classes over those Python classes, their
instances were traversed twice by the garbage collector (3.11 crashed; 3.12+ never
collected an unclosed transport its protocol held). The invariant owned here:
importing looplet needs no package outside the standard library, so without
mypy_extensions (a pure install) the decorator is the identity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

_C = TypeVar("_C")

try:
    from mypy_extensions import mypyc_attr as mypyc_attr
except ImportError:  # a pure install: nothing reads the attributes

    def mypyc_attr(*attrs: str, **kwattrs: object) -> Callable[[_C], _C]:
        """The identity decorator, in place of mypy_extensions' own."""
        return lambda cls: cls
