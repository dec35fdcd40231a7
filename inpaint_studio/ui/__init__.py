"""PySide6 user interface: the studio window, canvas, tools and panels."""

from inpaint_studio.ui.qt_compat import immortalize_singletons as _immortalize_singletons

_immortalize_singletons()  # must run before the UI makes many PySide6 calls; see qt_compat
