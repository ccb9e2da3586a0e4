"""Subscribe filter expressions: the language on the payload and meta, and the 400 for a
malformed one."""

from __future__ import annotations

import pytest

from pfunc.server.filters import FilterError, compile_filter

META = {
    "region": "east",
    "priority": 3,
    "tags": ["news", "eu"],
    "name": "ada",
    "user": {"team": "x", "role": "admin"},
    "colour": "Blue",
    "star": "b*",
}
DATA = {
    "score": 90,
    "text": "hi",
    "user": {"name": "ada"},
    "items": [{"n": 1}, {"n": 2}],
    "meta": {"x": 2},
    "x": 1,
}


@pytest.mark.parametrize(
    ("expression", "publisher", "passes"),
    [
        ("uuid != 'ada'", "bob", True),
        ("uuid != 'ada'", "ada", False),
        ('uuid == "bob"', "bob", True),
        ("region == 'east'", None, True),
        ("region == 'west'", None, False),
        ("priority > 2", None, True),
        ("priority >= 3 && priority <= 3", None, True),
        ("priority < 3", None, False),
        ("priority == 3", None, True),
        ("priority == '3'", None, True),  # PubNub compares a number with its text
        ("name LIKE 'a*'", None, True),
        ("name LIKE 'b*'", None, False),
        ("name like '*d*'", None, True),
        ("tags CONTAINS 'news'", None, True),
        ("tags CONTAINS 'sport'", None, False),
        ("name CONTAINS 'd'", None, True),
        ("region == 'west' || priority > 2", None, True),
        ("region == 'east' && (priority > 5 || tags CONTAINS 'eu')", None, True),
        ("!(region == 'east')", None, False),
        ("user.team == 'x'", None, True),
        ("meta.user.team == 'x'", None, True),
        # The payload (data.) and meta (meta.), as PubNub's filter reference reads them.
        ("data.score > 80", None, True),
        ("data.score > 95", None, False),
        ("(meta.priority == 3) && (data.score > 80)", None, True),
        ('data.user["name"] == "ada"', None, True),
        ("data.items[1].n == 2", None, True),
        ("data.items[2].n == 2", None, False),
        ("data.region == 'east'", None, False),  # meta's, not the payload's
        ('meta.user["role"] == "admin"', None, True),
        # Only the first step names the source: data.meta.x is the payload's meta.x.
        ("data.meta.x == 2", None, True),
        ("data.meta.x == 1", None, False),
        ('data["score"] > 80', None, True),
        ('meta["region"] == "east"', None, True),
        ("meta.user['role'] != 'admin'", None, False),
        # LIKE ignores case; \* is a star itself.
        ('colour LIKE "bl*"', None, True),
        ('colour LIKE "BLUE"', None, True),
        ('star LIKE "b\\*"', None, True),
        ('colour LIKE "b\\*"', None, False),
        ("missing == 1", None, False),
        ("missing != 1", None, True),
        ("", None, True),
    ],
)
def test_the_filter_language(expression, publisher, passes):
    assert compile_filter(expression)((META, publisher, DATA)) is passes


@pytest.mark.parametrize(
    "expression",
    [
        "region ==",
        "(a == 1",
        "a ~ 1",
        "== 1",
        "a == 1 b",
        "a == 'x",
        'a["b == 1',
        "a[x] == 1",
        "(" * 2000 + "a == 1" + ")" * 2000,  # was a RecursionError: a 500, not a 400
        "!" * 5000 + "a == 1",
    ],
)
def test_malformed_expressions_are_refused(expression):
    with pytest.raises(FilterError):
        compile_filter(expression)


def test_the_server_answers_400_to_a_malformed_filter(tmp_path):
    from tests.dev_harness import InProcessDev, make_project

    server = InProcessDev(make_project(tmp_path))
    try:
        status, _, body = server.request(
            "GET", "/v2/subscribe/sub-c-t/chat.a/0?tt=0&filter-expr=region%20%3D%3D"
        )
        assert status == 400 and "filter-expr" in body
    finally:
        server.stop()


def test_a_chain_of_a_thousand_terms_is_checked_not_a_recursion_error():
    """Each && nested one more predicate: 1,200 terms compiled, then overflowed Python's
    stack on the first message (a 500 from the subscribe)."""
    chain = compile_filter(" && ".join(["region == 'east'"] * 1200))
    assert chain((META, None, DATA)) is True
    either = compile_filter(" || ".join(["region == 'west'"] * 1200 + ["priority == 3"]))
    assert either((META, None, DATA)) is True
