"""numba's on-disk cache of sim's kernels, stamped with every sim module, not only their own.

numba stamps a cached function with its own file's content hash. The flush kernel
in flush_cycle.py compiles in the helpers of flush_events.py, the constants of
flush_layout.py and the draws of rng.py, so an edit to one of those alone left the
old kernel in use: a change to flush_events.py moved no result until the cache was
cleared by hand. Here the stamp is the hash of all of sim's top-level modules, so
any edit to them recompiles every cached kernel once.

The locators must be in place before a cached function is decorated (numba picks its
locator then), so sim's kernels take `njit` from here: importing this module installs
them. `import sim` alone does not import numba (it costs 0.2 s).
"""

from __future__ import annotations

import functools
import hashlib
import os

from numba import njit
from numba.core import caching

_SIM_DIR = os.path.dirname(os.path.abspath(__file__))
# numba 0.60 (which pyproject allows) names the locators with a leading underscore; 0.68 without
_USER_DIR = getattr(caching, "UserProvidedCacheLocator", None) or caching._UserProvidedCacheLocator
_IN_TREE = getattr(caching, "InTreeCacheLocator", None) or caching._InTreeCacheLocator


@functools.lru_cache(maxsize=1)
def sources_digest() -> str:
    """sha256 over the names and contents of sim's top-level .py files."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(_SIM_DIR)):
        if name.endswith(".py"):
            h.update(name.encode())
            with open(os.path.join(_SIM_DIR, name), "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


class _SimSourcesStamp:
    """A locator mix-in: only for functions defined in sim's own modules."""

    def get_source_stamp(self):
        return sources_digest()

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.dirname(os.path.abspath(py_file)) != _SIM_DIR:
            return None
        return super().from_function(py_func, py_file)


class _UserDirLocator(_SimSourcesStamp, _USER_DIR):
    """NUMBA_CACHE_DIR, when set (the benchmarks' fresh-process runs set it)."""


class _InTreeLocator(_SimSourcesStamp, _IN_TREE):
    """sim/__pycache__, numba's default."""


def install() -> None:
    """Put the locators above ahead of numba's own (idempotent)."""
    classes = caching.CacheImpl._locator_classes
    if _InTreeLocator not in classes:
        classes[:0] = [_UserDirLocator, _InTreeLocator]


install()
__all__ = ["install", "njit", "sources_digest"]
