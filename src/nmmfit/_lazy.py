"""Lazy exports of a package: names resolved from their modules on first access.

``__getattr__, __dir__ = lazy_exports(__name__, globals(), exports, modules)`` in a
package's ``__init__``: ``exports`` maps a public name to the module that defines it,
``modules`` lists submodules exported as themselves. A resolved name is cached in the
package's globals, so the lookup runs once per name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, namespace: dict, exports: Mapping[str, str],
                 modules=()) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package`` (module docstring)."""
    exports, modules = dict(exports), tuple(modules)

    def __getattr__(name: str):
        if name in modules:
            return importlib.import_module(f"{package}.{name}")
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports) | set(modules))

    return __getattr__, __dir__
