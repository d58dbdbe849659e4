"""JSON key casing between OCPP's camelCase and the handlers' snake_case, converted once per key.

The ``ocpp`` library converts every key of every message with regular expressions (and, towards
camelCase, a dozen string replacements): about 8% of the server's CPU under a MeterValues load, where the
same few dozen keys come back in every message. Here each key's conversion is the library's own, looked up
in a bounded cache, so the result is the same and a station sending made-up keys cannot grow memory.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case

#: Distinct keys remembered per direction: every OCPP 1.6 and 2.0.1 field name fits many times over.
KEY_CACHE_SIZE = 4096


@functools.lru_cache(maxsize=KEY_CACHE_SIZE)
def snake_key(key: str) -> str:
    """One camelCase key in snake_case, as the ``ocpp`` library converts it."""
    return next(iter(camel_to_snake_case({key: None})))


@functools.lru_cache(maxsize=KEY_CACHE_SIZE)
def camel_key(key: str) -> str:
    """One snake_case key in camelCase, as the ``ocpp`` library converts it."""
    return next(iter(snake_to_camel_case({key: None})))


def to_snake(data: Any) -> Any:
    """Every dictionary key inside ``data`` in snake_case (values other than dicts and lists untouched)."""
    return _rekeyed(data, snake_key)


def to_camel(data: Any) -> Any:
    """Every dictionary key inside ``data`` in camelCase (values other than dicts and lists untouched)."""
    return _rekeyed(data, camel_key)


def _rekeyed(data: Any, convert: Callable[[str], str]) -> Any:
    # Loops, not comprehensions: one stack frame per level of nesting, as deep as the library goes.
    if isinstance(data, dict):
        converted = {}
        for key, value in data.items():
            converted[convert(key) if isinstance(key, str) else key] = _rekeyed(value, convert)
        return converted
    if isinstance(data, list):
        items = []
        for value in data:
            items.append(_rekeyed(value, convert))
        return items
    return data
