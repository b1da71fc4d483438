"""A bounded, thread-safe memo of parse results shared by every parse in this process.

Contract:
- :class:`BoundedMemo` maps hashable keys to values; :meth:`~BoundedMemo.get` returns the value
  or :data:`MISSING`, :meth:`~BoundedMemo.put` stores one and forgets the least recently used
  entries beyond ``size``. Safe to use from many collector threads at once.
- What is stored must not be changed by whoever gets it back (the parse layer's section values
  are frozen dataclasses, tuples and datetimes; a :class:`~ipsec_doctor.errors.ParseError` is
  stored as the error to raise again).
- Why: an audit parses a device's outputs for its tunnel enumeration and again for each tunnel
  (and the plan's ``when`` conditions parse what was read so far); the same output parsed in
  the same context gives the same section, so it is built once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Final


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: What :meth:`BoundedMemo.get` returns for a key it does not hold.
MISSING: Final = _Missing()


class BoundedMemo:
    """Least-recently-used memo of at most ``size`` entries (see the module contract)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a memo holds at least one entry")
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> object:
        with self._lock:
            try:
                value = self._entries[key]
            except KeyError:
                self.misses += 1
                return MISSING
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: object) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)
