"""The App Context filter language: what each expression selects, and the malformed ones
refused (the endpoints answer those with PubNub's 400)."""

from __future__ import annotations

import pytest

from pfunc.app_context_filter import FilterError, parse_filter

ADA = {
    "id": "ada",
    "name": "Ada Lovelace",
    "email": None,
    "status": "active",
    "type": "admin",
    "updated": "2025-02-06T21:27:40.980884Z",
    "custom": {"level": 3, "city": "London", "vip": True, "code": "7", "star": "a*b"},
}


@pytest.mark.parametrize(
    ("expression", "selected"),
    [
        ("id == 'ada'", True),
        ('name == "Ada Lovelace"', True),
        ("name != 'Ada Lovelace'", False),
        ("name LIKE 'ada*'", True),  # LIKE ignores case
        ("name like '*love*'", True),
        ("name LIKE 'Ada'", False),  # the whole value must match
        (r"custom.star LIKE 'a\*b'", True),
        (r"custom.star LIKE 'a\*'", False),
        ("custom.level > 2 && custom.level <= 3", True),
        ("custom.level >= 4", False),
        ("custom.level == '3'", True),  # a number and its text compare equal
        ("custom.code < 10", True),
        ("custom.vip == true", True),
        ("custom.vip == 1", False),  # a boolean is not a number
        ("custom.missing == null", True),
        ("custom.missing != 'x'", True),
        ("custom.missing > 1", False),
        ("email == null", True),
        ("status == 'active' || type == 'nobody'", True),
        ("status == 'gone' || type == 'nobody'", False),
        ("!(status == 'gone') && !(type == 'user')", True),
        ("status == 'gone' || type == 'admin' && custom.city == 'London'", True),
        ("(status == 'gone' || type == 'admin') && custom.city == 'Paris'", False),
        ("updated > '2025-01-01T00:00:00Z'", True),
        ("updated < '2025-02-06T21:27:41Z'", True),  # as times, not as text
        ("updated >= '2026-01-01'", False),
        ("name == 'it\\'s'", False),
        ("name LIKE '" + "*a" * 40 + "*b'", False),  # many stars, matched piece by piece
        ("name LIKE '*a*o*e*'", True),
        ("name LIKE 'A*e'", True),
        ("name LIKE 'A*a*e*e'", True),
        ("name LIKE 'A*z*e'", False),
    ],
)
def test_what_a_filter_selects(expression: str, selected: bool) -> None:
    assert parse_filter(expression, "uuid")(ADA) is selected


def test_membership_filters_read_the_channel_and_the_membership() -> None:
    link = {
        "status": "joined",
        "custom": {"role": "admin"},
        "updated": "2025-01-01T00:00:00.000000Z",
        "channel": {"id": "general", "name": "General", "custom": {"topic": "all"}},
    }
    assert parse_filter("channel.name LIKE 'gen*' && custom.role == 'admin'", "membership")(link)
    assert parse_filter("channel.custom.topic == 'all'", "membership")(link)
    assert not parse_filter("channel.id == 'random'", "membership")(link)
    member = {"uuid": {"id": "ada", "email": "a@b"}, "type": "host"}
    assert parse_filter("uuid.email == 'a@b' && type == 'host'", "member")(member)


@pytest.mark.parametrize(
    ("expression", "kind"),
    [
        ("", "uuid"),
        ("name", "uuid"),
        ("name ==", "uuid"),
        ("name = 'x'", "uuid"),
        ("name == 'x' &&", "uuid"),
        ("(name == 'x'", "uuid"),
        ("name == 'x')", "uuid"),
        ("name == 'unterminated", "uuid"),
        ("name == x", "uuid"),
        ("name LIKE 3", "uuid"),
        ("nickname == 'x'", "uuid"),  # not a field of a user
        ("description == 'x'", "uuid"),
        ("email == 'x'", "channel"),
        ("custom == 'x'", "uuid"),  # custom needs a field name
        ("custom.a.b == 'x'", "uuid"),  # custom is flat
        ("uuid.name == 'x'", "membership"),  # memberships name channels
        ("name == 'x' name == 'y'", "uuid"),
        ("name == 'x' & id == 'y'", "uuid"),
        ("(" * 60 + "id == 'x'" + ")" * 60, "uuid"),  # deeper than anyone writes
        ("!" * 5000 + "id == 'x'", "uuid"),
    ],
)
def test_malformed_filters_are_refused(expression: str, kind: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(expression, kind)


def test_a_long_flat_filter_is_evaluated_without_deep_recursion() -> None:
    """Chains of && and || are lists, not nested closures (a 9 KB filter once hit
    Python's recursion limit)."""
    record = {"id": "1"}
    assert parse_filter("&&".join(["id == '1'"] * 5000), "uuid")(record)
    assert parse_filter("||".join(["id == '2'"] * 5000 + ["id == '1'"]), "uuid")(record)
