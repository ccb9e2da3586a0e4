"""The jsonpath module against jsonpath-plus (the library PubNub's module inherits): every
example of the library's README table on its own store document, with each result type.
tests/data/jsonpath_plus_readme.json holds the answers the real library (version named in
the file) gave; pfunc's JavaScript must give the same. tests/data/jsonpath_plus_edges.json
holds edge cases (negative indices, .. over strings, paths without $ or as arrays) where
versions 9, 10 and 11 agree, written by tests/data/jsonpath_plus_edges.cjs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pfunc.sandbox.sync_builtins import SyncBuiltins
from tests.conftest import needs_two_cpus, second_cpu_busy

DATA = Path(__file__).parent / "data"
KNOWN = json.loads((DATA / "jsonpath_plus_readme.json").read_text())
CASES = [
    (case["path"], result_type, answer)
    for case in KNOWN["cases"]
    for result_type, answer in case["results"].items()
]
EDGES = json.loads((DATA / "jsonpath_plus_edges.json").read_text())
EDGE_CASES = [
    (case["path"], result_type, answer)
    for case in EDGES["cases"]
    for result_type, answer in case["results"].items()
]


@pytest.fixture(scope="module")
def builtins() -> SyncBuiltins:
    return SyncBuiltins(None)


@pytest.mark.parametrize(("path", "result_type", "answer"), CASES)
def test_the_readme_examples_give_jsonpath_plus_answers(builtins, path, result_type, answer):
    options = {"path": path, "json": KNOWN["json"], "resultType": result_type}
    assert json.loads(builtins.call("jsonpath", "JSONPath", json.dumps([options]), 0, 10)) == answer


@pytest.mark.parametrize(("path", "result_type", "answer"), EDGE_CASES)
def test_edge_cases_give_what_every_jsonpath_plus_version_gives(
    builtins, path, result_type, answer
):
    """ "THROWS" where the library throws: a script that gives a number not in the array."""
    from pfunc.sandbox.sync_builtins import SyncBuiltinError

    options = {"path": path, "json": EDGES["json"], "resultType": result_type}
    try:
        given = json.loads(builtins.call("jsonpath", "JSONPath", json.dumps([options]), 0, 10))
    except SyncBuiltinError:
        given = "THROWS"
    assert given == answer


def test_a_handler_uses_the_extensions(harness, write_handler):
    handler = write_handler(
        """
        const { JSONPath } = require("jsonpath");
        export default (request) => request.ok({
          names: JSONPath({ path: "$.store.*~", json: request.message }),
          cheap: JSONPath({ path: "$..book[?(@.price < 10)]", json: request.message,
                            resultType: "pointer" }),
          one: JSONPath({ path: "$.store.bicycle.color", json: request.message, wrap: false }),
        });
        """
    )
    result = harness.run(handler, message=KNOWN["json"])
    assert result.outcome == "ok", result.error
    assert result.message == {
        "names": ["book", "bicycle"],
        "cheap": ["/store/book/0", "/store/book/2"],
        "one": "red",
    }


# What jsonpath-plus 10 gave for these (run in Node on the same document): it asks a
# string for its own properties as it asks an object, so .length and [0] reach into it.
STRING_PROPERTIES = {
    "$.store.bicycle.color.length": [3],
    "$.store.book.length": [4],
    "$..author.length": [10, 12, 15, 16],
    "$.store.book[0].title[0]": ["S"],
    '$.store.bicycle["color"].length': [3],
}


@pytest.mark.parametrize(("path", "answer"), STRING_PROPERTIES.items())
def test_a_strings_own_properties_are_reached_as_jsonpath_plus_reaches_them(builtins, path, answer):
    options = {"path": path, "json": KNOWN["json"]}
    assert json.loads(builtins.call("jsonpath", "JSONPath", json.dumps([options]), 0, 10)) == answer


@pytest.mark.parametrize("threaded", [False, True], ids=["main-thread", "thread"])
def test_a_filter_that_never_ends_stops_at_the_time_limit_and_the_next_call_runs(threaded):
    """A Python handler's synchronous built-ins run under its execution's limit, on the
    main thread or on one of its own (the dev server runs a handler's host there)."""
    import threading

    from pfunc.sandbox.sync_builtins import SyncBuiltinError

    outcomes = []

    def call_twice() -> None:
        builtins = SyncBuiltins(None)
        forever = {"path": "$[?((() => { for (;;) {} })())]", "json": [1]}
        try:
            builtins.call("jsonpath", "JSONPath", json.dumps([forever]), 0, 0.2)
        except SyncBuiltinError as error:
            outcomes.append(error.message)
        plain = {"path": "$[0]", "json": [7]}
        outcomes.append(
            json.loads(builtins.call("jsonpath", "JSONPath", json.dumps([plain]), 0, 5))
        )

    if threaded:
        worker = threading.Thread(target=call_twice)
        worker.start()
        worker.join()
    else:
        call_twice()
    assert outcomes == ["jsonpath.JSONPath ran past the time limit", [7]]


@needs_two_cpus
def test_a_filter_on_a_thread_is_held_to_wall_time_while_another_thread_is_busy():
    """The binding's own limit counts the process's CPU time: with another thread busy
    it stopped a never-ending filter at about half its limit. TimeLimit holds it to the
    wall clock (sandbox/wall_watchdog.py)."""
    import threading
    import time

    from pfunc.sandbox.sync_builtins import SyncBuiltinError

    stopped_after = []

    def filter_forever() -> None:
        builtins = SyncBuiltins(None)
        forever = {"path": "$[?((() => { for (;;) {} })())]", "json": [1]}
        began = time.monotonic()
        with pytest.raises(SyncBuiltinError, match="ran past the time limit"):
            builtins.call("jsonpath", "JSONPath", json.dumps([forever]), 0, 0.6)
        stopped_after.append(time.monotonic() - began)

    with second_cpu_busy():
        worker = threading.Thread(target=filter_forever)
        worker.start()
        worker.join()
    assert stopped_after and stopped_after[0] >= 0.55, stopped_after
