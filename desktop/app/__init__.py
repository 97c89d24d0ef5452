"""The desktop app (PySide6): a thin window over the runtime library in ``colorizer.desktop``.

Run it with the ``colorizer`` command (``pip install -e ".[gui]"``). Nothing in this package does
image or video work itself: the worker calls :class:`colorizer.desktop.batch.BatchRunner` (and the
video pipeline for video items) on a background thread and forwards its progress as Qt signals.
"""
