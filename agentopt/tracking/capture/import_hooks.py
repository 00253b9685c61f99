"""Run a function right after a module is imported, without importing it ourselves.

Capture must reach libraries the user imports *after* a tracker started
(litellm, anthropic's ``httpx2``) without paying their import cost up front.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType

__all__ = ["cancel", "when_imported"]

_lock = threading.Lock()
_pending: dict[str, Callable[[ModuleType], None]] = {}


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _pending:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_then_call(module: ModuleType) -> None:
            exec_module(module)
            with _lock:
                fn = _pending.pop(fullname, None)
                if not _pending and _FINDER in sys.meta_path:
                    sys.meta_path.remove(_FINDER)
            if fn is not None:
                fn(module)

        spec.loader.exec_module = exec_then_call  # type: ignore[method-assign]
        return spec


_FINDER = _Finder()


def when_imported(name: str, fn: Callable[[ModuleType], None]) -> None:
    """Call ``fn(module)`` now if ``name`` is imported, else right after its import."""
    mod = sys.modules.get(name)
    if mod is not None:
        fn(mod)
        return
    with _lock:
        _pending[name] = fn
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)


def cancel(name: str) -> None:
    """Forget a pending hook for ``name``."""
    with _lock:
        _pending.pop(name, None)
        if not _pending and _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
