"""PySide6 user interface: the studio window, canvas, tools and panels."""
