"""The serialisers every deployment file goes through: what they write parses back
to the very data they were given, and a file opens with where it comes from."""

from __future__ import annotations

import tomllib
from typing import Any

import yaml

from juststorage.deploy.documents import header, toml_text, yaml_body, yaml_text

# Values a YAML writer gets wrong when it writes them bare: strings that read as
# numbers, booleans, null or flow collections; block strings; empty collections.
AWKWARD: dict[str, Any] = {
    "port": "8080",
    "flag": "true",
    "off": "off",
    "address": "0.0.0.0",
    "empty": "",
    "null": None,
    "template": "{{ $labels.instance }} is down",
    "caprover": "$$cap_gen_random_hex(32)",
    "flow": "[a, b]",
    "colon": "key: value",
    "block": "line one\n  indented two\n",
    "block without newline": "- op: add\n  path: /x",
    "long": "x " * 300 + "end",
    "nested": {"list": [[1, 2], {"k": []}], "map": {}},
    "unicode": "SPEC §7",
}


def test_yaml_round_trips_awkward_values() -> None:
    assert yaml.safe_load(yaml_body([AWKWARD])) == AWKWARD


def test_yaml_keeps_several_documents_and_the_order_of_keys() -> None:
    text = yaml_body([{"b": 1, "a": 2}, [{"c": 3}]])
    assert list(yaml.safe_load_all(text)) == [{"b": 1, "a": 2}, [{"c": 3}]]
    assert text.index("b:") < text.index("a:")


def test_yaml_writes_block_strings_as_literal_blocks_and_no_line_folded() -> None:
    text = yaml_body([AWKWARD])
    assert "block: |\n  line one\n    indented two\n" in text
    assert f"\nlong: {AWKWARD['long']}\n" in text  # one line, not folded


def test_toml_round_trips() -> None:
    document = {"app": "x", "env": {"PORT": "8080"}, "checks": [{"path": "/ready", "n": 1}]}
    assert tomllib.loads(toml_text("juststorage.deploy.flyio", document)) == document


def test_every_file_opens_with_its_source_module_then_its_notes() -> None:
    text = yaml_text("juststorage.deploy.render", {"a": 1}, notes=["use it so", ""])
    lines = text.splitlines()
    assert lines[0].endswith("from src/juststorage/deploy/render.py.")
    assert "make deploy-files" in lines[1]
    assert lines[2:4] == ["# use it so", "#"]
    assert header("juststorage.deploy.render") == "\n".join(lines[:2]) + "\n"
