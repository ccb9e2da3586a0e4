"""kvstore semantics and validation (REFERENCE section 4), through the real engine and SQLite."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import HANDLERS

PROBE = HANDLERS / "kv_errors.js"


def call(harness, method: str, *args: Any, limits: str = "unlimited") -> dict[str, Any]:
    """Run kvstore.<method>(*args) in a handler; return {result} or {error: {name, message}}."""
    harness.limits = limits
    result = harness.run(PROBE, message={"call": method, "args": list(args)})
    assert result.outcome == "ok", result.error
    message = result.message
    return {k: message[k] for k in ("result", "error") if k in message} | {
        "warnings": result.warnings
    }


def test_set_get_round_trip_and_null_deletes(harness):
    assert call(harness, "set", "k", {"a": [1, 2]})["result"] == "$undefined"
    assert call(harness, "get", "k")["result"] == {"a": [1, 2]}
    call(harness, "set", "k", None)
    assert call(harness, "get", "k")["result"] is None
    assert call(harness, "get", "never-set")["result"] is None


def test_set_item_and_get_item_cross_reads(harness):
    call(harness, "setItem", "s", "plain text")
    assert call(harness, "get", "s")["result"] == "plain text"
    assert call(harness, "getItem", "s")["result"] == "plain text"
    call(harness, "set", "o", {"n": 1})
    assert call(harness, "getItem", "o")["result"] == '{"n":1}'


def test_items_and_counters_are_separate_key_spaces(harness):
    call(harness, "set", "shared", "item")
    assert call(harness, "incrCounter", "shared")["result"] == 1
    assert call(harness, "incrCounter", "shared", 5)["result"] == 6
    assert call(harness, "incrCounter", "shared", -2)["result"] == 4
    assert call(harness, "get", "shared")["result"] == "item"
    assert call(harness, "getCounter", "shared")["result"] == 4
    assert call(harness, "getCounter", "unknown")["result"] == 0
    call(harness, "removeItem", "shared")  # removes both
    assert call(harness, "get", "shared")["result"] is None
    assert call(harness, "getCounter", "shared")["result"] == 0


def test_default_ttl_is_a_day_and_expiry_uses_the_execution_clock(harness):
    call(harness, "set", "day", 1)
    harness.clock.advance(24 * 3600 - 1)
    assert call(harness, "get", "day")["result"] == 1
    harness.clock.advance(2)
    assert call(harness, "get", "day")["result"] is None


def test_ttl_out_of_range_is_clamped_with_a_warning(harness):
    low = call(harness, "set", "low", 1, 0)
    assert any("ttl 0" in w and "clamped to 1" in w for w in low["warnings"])
    harness.clock.advance(59)
    assert call(harness, "get", "low")["result"] == 1
    harness.clock.advance(2)
    assert call(harness, "get", "low")["result"] is None
    high = call(harness, "set", "high", 1, 10**9)
    assert any("clamped to 525,600" in w for w in high["warnings"])


@pytest.mark.parametrize(
    ("method", "args", "name", "fragment"),
    [
        (
            "set",
            [{"$repeat": 251}, 1],
            "Error",
            'kvstore.set: key is 251 characters; the limit is 250 (profile "classic")',
        ),
        (
            "set",
            ["big", {"$repeat": 30_719}],
            "Error",
            'kvstore.set: value for key "big" is 30,721 bytes of JSON; the limit is 30,720 '
            '(profile "classic")',
        ),
        (
            "set",
            ["u", "$undefined"],
            "TypeError",
            'kvstore.set: value for key "u" is undefined, which is not JSON-serialisable',
        ),
        (
            "set",
            ["c", "$cyclic"],
            "TypeError",
            'kvstore.set: value for key "c" is object with a circular reference, which is not '
            "JSON-serialisable",
        ),
        ("set", ["f", "$function"], "TypeError", 'value for key "f" is function'),
        (
            "setItem",
            ["n", 42],
            "TypeError",
            'kvstore.setItem: value for key "n" must be a string, got number',
        ),
        (
            "set",
            ["t", 1, "5"],
            "TypeError",
            'kvstore.set: ttl for key "t" must be a number of minutes, got string "5"',
        ),
        (
            "incrCounter",
            ["i", 1.5],
            "TypeError",
            'kvstore.incrCounter: amount for key "i" must be a whole number, got number 1.5',
        ),
        ("get", [7], "TypeError", "kvstore.get: key must be a string, got number 7"),
        (
            "getKeys",
            ["not-a-token"],
            "Error",
            'kvstore.getKeys: pagination token "not-a-token" is not one this call issued',
        ),
    ],
)
def test_invalid_calls_reject_with_the_contract_wording(harness, method, args, name, fragment):
    outcome = call(harness, method, *args, limits="classic")
    assert outcome["error"]["name"] == name
    assert fragment in outcome["error"]["message"]


def test_value_limit_is_exact_at_the_boundary(harness):
    # '"' + 30,718 x + '"' = 30,720 bytes: allowed.
    assert "error" not in call(harness, "set", "edge", {"$repeat": 30_718}, limits="classic")
    assert call(harness, "get", "edge")["result"] == "x" * 30_718


def test_pubnub_2026_limits_count_characters(harness):
    # 1,000-character keys are fine there; 32,000 characters of JSON is the value limit.
    assert "error" not in call(harness, "set", {"$repeat": 1000}, 1, limits="pubnub-2026")
    too_big = call(harness, "set", "v", {"$repeat": 31_999}, limits="pubnub-2026")
    assert "32,001 characters of JSON; the limit is 32,000" in too_big["error"]["message"]


def test_characters_are_counted_as_a_handlers_own_length_reads_them(harness):
    """An emoji is 2 in JavaScript's .length: 500 of them are a 1,000-character key, one
    more is past the limit, and the message's count is the one the handler can check."""
    emoji = "\U0001f600"
    assert "error" not in call(harness, "set", emoji * 500, 1, limits="pubnub-2026")
    over = call(harness, "set", emoji * 501, 1, limits="pubnub-2026")
    assert "key is 1,002 characters; the limit is 1,000" in over["error"]["message"]
    value = call(harness, "setItem", "e", emoji * 16_001, limits="pubnub-2026")
    assert 'value for key "e" is 32,002 characters; the limit' in value["error"]["message"]
    assert "error" not in call(harness, "setItem", "e", emoji * 16_000, limits="pubnub-2026")


def test_set_item_measures_its_string_not_the_strings_json(harness):
    """setItem stores a string "up to 32,000 characters" (PubNub): its quotes and escapes
    as JSON are not the handler's characters, so JSON.stringify'd text full of quotes is
    not charged twice."""
    exact = call(harness, "setItem", "s", {"$repeat": 32_000}, limits="pubnub-2026")
    assert "error" not in exact, exact
    quoted = '"' * 20_000
    assert "error" not in call(harness, "setItem", "q", quoted, limits="pubnub-2026")
    assert call(harness, "getItem", "q")["result"] == quoted
    over = call(harness, "setItem", "s", {"$repeat": 32_001}, limits="pubnub-2026")
    assert 'value for key "s" is 32,001 characters; the limit' in over["error"]["message"]
    edge = call(harness, "setItem", "c", {"$repeat": 30_720}, limits="classic")
    assert "error" not in edge, edge  # 30,720 bytes of text (its JSON is 30,722)


def test_a_value_whose_json_is_null_deletes_as_null_does(harness, write_handler):
    """new Date(NaN) and a toJSON that gives null are JSON null: stored, the text "null"
    read as no item yet was listed by getKeys, and its export could not be imported."""
    handler = write_handler(
        'const db = require("kvstore");\n'
        "export default async (request) => {\n"
        '  await db.set("d", 1); await db.set("d", new Date(NaN));\n'
        '  await db.set("t", { toJSON() { return null; } });\n'
        "  request.message.keys = (await db.getKeys()).keys;\n"
        "  return request.ok();\n"
        "};\n"
    )
    harness.limit_overrides = {"operations": 10}
    result = harness.run(handler, message={})
    assert result.outcome == "ok", result.error
    assert result.message["keys"] == []


def test_failed_calls_write_nothing(harness):
    call(harness, "set", "keep", "original")
    call(harness, "set", "keep", "$cyclic")
    call(harness, "setItem", "keep", 5)
    call(harness, "set", "keep", {"$repeat": 40_000}, limits="classic")
    assert call(harness, "get", "keep")["result"] == "original"


def _pages(harness, method: str) -> list[dict[str, Any]]:
    pages, token = [], None
    while True:
        page = call(harness, method, *([token] if token else []))["result"]
        pages.append(page)
        token = page.get("next")
        if not token:
            return pages


@pytest.mark.parametrize(
    ("method", "writer"), [("getKeys", "set"), ("getCounterKeys", "incrCounter")]
)
def test_key_listing_pages_of_100_sorted_with_next(harness, tmp_path, method, writer):
    handler = tmp_path / "fill.js"
    value = ", i" if writer == "set" else ""
    handler.write_text(
        'const db = require("kvstore");\n'
        "export default async (request) => {\n"
        "  const writes = [];\n"
        "  for (let i = 0; i < 250; i++) {\n"
        f"    writes.push(db.{writer}(`key-${{String(i).padStart(3, '0')}}`{value}));\n"
        "  }\n"
        "  await Promise.all(writes);\n"
        "  return request.ok();\n"
        "};\n"
    )
    harness.limits = "unlimited"
    assert harness.run(handler).outcome == "ok"
    pages = _pages(harness, method)
    assert [len(p["keys"]) for p in pages] == [100, 100, 50]
    assert ["next" in p for p in pages] == [True, True, False]
    keys = [k for p in pages for k in p["keys"]]
    assert keys == sorted(keys) == [f"key-{i:03d}" for i in range(250)]


def test_get_keys_skips_expired_items(harness):
    call(harness, "set", "short", 1, 1)
    call(harness, "set", "long", 1, 100)
    harness.clock.advance(120)
    assert call(harness, "getKeys")["result"] == {"keys": ["long"]}


def test_keysets_scope_the_store(tmp_path):
    from tests.conftest import run_cli

    kv = tmp_path / "kv.sqlite3"
    set_args = json.dumps({"call": "set", "args": ["k", "a-value"]})
    get_args = json.dumps({"call": "get", "args": ["k"]})
    run_cli("run", PROBE, "--kv", kv, "--keyset", "sub-c-a", "--message", set_args)
    same = run_cli("run", PROBE, "--kv", kv, "--keyset", "sub-c-a", "--message", get_args, "--json")
    other = run_cli(
        "run", PROBE, "--kv", kv, "--keyset", "sub-c-b", "--message", get_args, "--json"
    )
    assert same.json()["message"]["result"] == "a-value"
    assert other.json()["message"]["result"] is None


def test_an_infinite_ttl_is_a_number_out_of_range_clamped_not_refused(harness, write_handler):
    handler = write_handler(
        'const kv = require("kvstore");\n'
        "export default async (request) => {\n"
        '  await kv.set("far", 1, Infinity);\n'
        '  await kv.set("near", 1, -Infinity);\n'
        "  return request.ok();\n"
        "};\n",
        "infinite.js",
    )
    result = harness.run(handler)
    assert result.outcome == "ok", result.error
    assert any('ttl Infinity for key "far"' in w and "525,600" in w for w in result.warnings)
    assert any('ttl -Infinity for key "near"' in w and "clamped to 1" in w for w in result.warnings)


@pytest.mark.parametrize("depth", [600, 5000])
def test_a_value_nested_deeper_than_parsers_read_is_refused_as_such(harness, tmp_path, depth):
    """Stored, it broke every `pfunc kv` read of the store; 4,500 deep and more was
    blamed on a BigInt (the engine's stack ran out in JSON.stringify). Refused before any
    module reads it: xhr read such options as none, and sent a GET for a POST."""
    handler = tmp_path / "deep.js"
    handler.write_text(
        'const db = require("kvstore");\n'
        "export default async (request) => {\n"
        f"  let v = 0;\n  for (let i = 0; i < {depth}; i++) v = [v];\n"
        '  try { await db.set("deep", v); } catch (error) { request.message.error = error.message; }\n'
        "  return request.ok();\n};\n"
    )
    result = harness.run(handler, message={})
    assert result.outcome == "ok", result.error
    assert result.message["error"] == (
        "kvstore.set: argument 2 is an array or object nested more than 500 levels deep, "
        "which JSON parsers cannot read back; pass less deeply nested data"
    )


def test_xhr_options_nested_too_deep_are_refused_not_read_as_none(harness, tmp_path):
    handler = tmp_path / "post.js"
    handler.write_text(
        'const xhr = require("xhr");\n'
        "export default async (request) => {\n"
        "  let body = 0;\n  for (let i = 0; i < 600; i++) body = [body];\n"
        '  try { await xhr.fetch("https://x.test/a", { method: "POST", body }); }\n'
        "  catch (error) { request.message.error = error.message; }\n"
        "  return request.ok();\n};\n"
    )
    result = harness.run(handler, message={})
    assert result.message["error"].startswith(
        "xhr.fetch: argument 2 is an array or object nested more than 500 levels deep"
    )
