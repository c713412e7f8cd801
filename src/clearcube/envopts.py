"""Settings read from the environment: the limits an operator may raise without a config
(deadlines, size caps, depths), each a positive number with a documented default."""

from __future__ import annotations

import os

from .errors import ConfigError

__all__ = ["positive_option"]


def positive_option(option: str, default: float, unit: str = "") -> float:
    """The environment variable ``option`` as a positive number, ``default`` when unset.

    Raises
    ------
    ConfigError
        The value is not a positive number (one line naming it and the default).
    """
    value = os.environ.get(option)
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        of = f" of {unit}" if unit else ""
        raise ConfigError(
            f"{option}={value!r} is not a positive number{of}; unset it or give e.g. {default:g}"
        )
    return number
