"""Stand-in modules served from ``sys.modules`` only while scripts load or run."""
from __future__ import annotations

import sys
import threading
import types
from contextlib import contextmanager
from typing import Callable, Iterator


class ServedModules:
    """Puts ``make()``'s modules into ``sys.modules`` while a context is open and restores
    what was there when the last one closes (re-entrant, thread-safe), so the real
    packages are never patched for other code."""

    def __init__(self, make: Callable[[], dict[str, types.ModuleType]]):
        self._make = make
        self._lock = threading.RLock()
        self._depth = 0
        self._saved: dict[str, types.ModuleType | None] = {}

    @contextmanager
    def serve(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                for name, module in self._make().items():
                    self._saved[name] = sys.modules.get(name)
                    sys.modules[name] = module
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    for name, module in self._saved.items():
                        if module is None:
                            sys.modules.pop(name, None)
                        else:
                            sys.modules[name] = module
                    self._saved.clear()
