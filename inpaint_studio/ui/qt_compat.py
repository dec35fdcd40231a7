"""Work-arounds for defects of the installed Qt bindings, applied once when inpaint_studio.ui is imported.

PySide6 6.12.0 (the cp310-abi3 wheels) drops one reference to ``None`` on every call of a method that
returns nothing (``QPainter.setOpacity``, ``QWidget.update``, ...). From Python 3.12 on ``None`` is immortal
and this is harmless; on Python 3.10 and 3.11 the count reaches zero after a few thousand calls (a few
seconds of painting) and the interpreter aborts with "Fatal Python error: none_dealloc". Measured here:
about 20 lost references per canvas repaint, from a starting count of about 5000.

The fix is what Python 3.12 does by design: give the singletons a reference count no program can use up.
"""

from __future__ import annotations

import sys

_IMMORTAL_BOOST = 1 << 48  # decades of painting at millions of lost references per second


def immortalize_singletons() -> bool:
    """Make None, True, False, Ellipsis and NotImplemented effectively immortal; True if it changed anything."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False  # already immortal, or a runtime whose object layout we do not know
    if hasattr(sys, "gettotalrefcount"):
        return False  # debug build: reference tracing would notice the counts and its layout may differ
    import ctypes

    for singleton in (None, True, False, Ellipsis, NotImplemented):
        # ob_refcnt is the first field of every object in a release build of CPython.
        count = ctypes.c_ssize_t.from_address(id(singleton))
        if count.value < _IMMORTAL_BOOST:
            count.value += _IMMORTAL_BOOST
    return True
