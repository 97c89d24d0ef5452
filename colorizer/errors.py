"""The root of every error Colorizer raises on purpose.

Each area subclasses :class:`ColorizerError` where its errors are defined (the contract, media
files, backends, engine building...), so a caller can catch one area or everything the package
raises, and the message always says what happened and what to do. Where an error used to be a
``ValueError`` or a ``RuntimeError`` it still is one as well.
"""

from __future__ import annotations


class ColorizerError(Exception):
    """Something Colorizer cannot do, with a message a user can act on."""
