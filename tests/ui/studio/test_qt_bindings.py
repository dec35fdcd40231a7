"""Guard against Qt bindings that lose references to None (PySide6 6.12.0 on Python < 3.12 did).

pyproject.toml excludes that release; this test fails if a broken build is installed anyway, instead of the
app aborting with "Fatal Python error: none_dealloc" after seconds of painting.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_many_void_qt_calls_do_not_abort_the_interpreter() -> None:
    script = textwrap.dedent(
        """
        import os
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        import inpaint_studio.ui
        from PySide6.QtGui import QGuiApplication, QImage, QPainter
        app = QGuiApplication([])
        image = QImage(8, 8, QImage.Format.Format_ARGB32_Premultiplied)
        painter = QPainter(image)
        for _ in range(50_000):  # about 2,500 canvas repaints' worth of lost references
            painter.setOpacity(0.5)
        painter.end()
        print("alive")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "alive" in result.stdout
