"""The desktop app (PySide6): a thin window over the runtime library in ``colorizer.desktop``.

Run it with the ``colorizer`` command (``pip install -e ".[gui]"``). Nothing in this package does
image or video work itself: the worker calls :func:`colorizer.desktop.pipeline.run.run_and_report`
(as ``colorize-batch`` does) on a background thread and forwards its progress as Qt signals.
"""
