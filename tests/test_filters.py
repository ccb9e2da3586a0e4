"""Subscribe filter expressions: the language on meta, and the 400 for a malformed one."""

from __future__ import annotations

import pytest

from pfunc.server.filters import FilterError, compile_filter

META = {
    "region": "east",
    "priority": 3,
    "tags": ["news", "eu"],
    "name": "ada",
    "user": {"team": "x"},
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
        ("missing == 1", None, False),
        ("missing != 1", None, True),
        ("", None, True),
    ],
)
def test_the_filter_language(expression, publisher, passes):
    assert compile_filter(expression)((META, publisher)) is passes


@pytest.mark.parametrize(
    "expression", ["region ==", "(a == 1", "a ~ 1", "== 1", "a == 1 b", "a == 'x"]
)
def test_malformed_expressions_are_refused(expression):
    with pytest.raises(FilterError):
        compile_filter(expression)


def test_the_server_answers_400_to_a_malformed_filter(tmp_path):
    from tests.test_dev_server import InProcessDev, make_project

    server = InProcessDev(make_project(tmp_path))
    try:
        status, _, body = server.request(
            "GET", "/v2/subscribe/sub-c-t/chat.a/0?tt=0&filter-expr=region%20%3D%3D"
        )
        assert status == 400 and "filter-expr" in body
    finally:
        server.stop()
