"""The runtime pipeline: tasks in, results and a report out (no Qt, no printing).

``tasks`` (inputs -> tasks) -> ``run`` (a whole run) -> ``batch`` / ``ray_runner`` (photos, through
the shared ``stages``) and ``video`` / ``frames`` (films, with ``temporal`` smoothing) -> ``report``.
"""
