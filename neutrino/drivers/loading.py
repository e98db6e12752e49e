"""Drivers are loaded by name: one of Neutrino's own, or ``package.module:factory`` for a
driver of one's own (as upstream accepts a class path besides an alias).

A factory is called with the settings and returns the driver.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from neutrino.config import Settings

Factory = Callable[[Settings], Any]


def load(kind: str, name: str, builtin: Mapping[str, Factory], settings: Settings) -> Any:
    """The driver ``name`` (a built-in one, or ``module:factory``), made for ``settings``;
    ValueError, saying what exists, for a name that is neither."""
    factory = builtin.get(name)
    if factory is None and ":" in name:
        module, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"{kind} driver {name!r} cannot be loaded: {exc}") from None
    if factory is None:
        raise ValueError(f"unknown {kind} driver {name!r}: one of "
                         f"{', '.join(sorted(builtin))}, or 'package.module:factory'")
    return factory(settings)
