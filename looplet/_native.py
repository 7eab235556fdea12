"""The one mypyc annotation looplet's compiled modules use, without a run-time dependency.

`mypyc_attr(allow_interpreted_subclasses=True)` lets interpreted classes (the
datagram and pipe transports, which also inherit from asyncio's transport classes)
subclass a class that mypyc compiles. mypyc reads the decorator when it compiles, from
`mypy_extensions` (installed with mypy at build time); at run time the decorator is
the identity, so when `mypy_extensions` is absent a stand-in does the same.
"""

from __future__ import annotations

from typing import Any

try:
    from mypy_extensions import mypyc_attr as mypyc_attr
except ImportError:  # the usual case at run time: standard library only

    def mypyc_attr(*attrs: Any, **kwattrs: Any) -> Any:  # type: ignore[no-redef,misc]
        return lambda cls: cls


__all__ = ["mypyc_attr"]
