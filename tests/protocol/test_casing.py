"""The cached key casing converts exactly as the ``ocpp`` library does, on every field name of both versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ocpp
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case

from optivgi_csms.protocol.casing import KEY_CACHE_SIZE, snake_key, to_camel, to_snake


def schema_field_names() -> set[str]:
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in Path(ocpp.__file__).parent.glob("**/schemas/*.json"):
        walk(json.loads(path.read_text(encoding="utf-8")))
    return names


def test_every_ocpp_field_name_is_converted_as_the_library_does() -> None:
    names = schema_field_names()
    assert len(names) > 300  # both versions' schemas were found
    nested = {name: {name: [{name: 1}, "text"]} for name in names}
    assert to_snake(nested) == camel_to_snake_case(nested)
    snake = camel_to_snake_case(nested)
    assert to_camel(snake) == snake_to_camel_case(snake)


def test_made_up_keys_do_not_grow_the_cache_past_its_bound() -> None:
    for n in range(KEY_CACHE_SIZE + 100):
        snake_key(f"madeUpKey{n}")
    assert snake_key.cache_info().currsize <= KEY_CACHE_SIZE
