"""Listing KV keys by prefix a page at a time: a range on the primary key (so a page costs
the same whatever the store's size), proven equal to "starts with" for any text."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pfunc.store import KVStore, key_range
from tests.conftest import REPO, invoke_cli


def run_cli(*args, cwd=None):  # the kv commands' answers: in this process
    return invoke_cli(*args, cwd=cwd or REPO)


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6) | st.text(
    st.sampled_from("a\U0010ffff\U0010fffe"), max_size=4
)


@given(prefix=text, key=text, after=st.none() | text)
def test_the_range_holds_exactly_the_keys_with_the_prefix(prefix, key, after):
    low, high = key_range(prefix, after)
    # SQLite compares text by UTF-8 bytes (the same order as code points), and puts every
    # text before every BLOB: a bytes bound is above all keys.
    below_high = isinstance(high, bytes) or key.encode() < high.encode()
    inside = low.encode() <= key.encode() and below_high
    assert inside == (key.startswith(prefix) and (after is None or key > after or after < prefix))


def test_pages_of_items_and_counters_from_a_real_store(tmp_path):
    async def go():
        store = KVStore.open(tmp_path / "kv.sqlite3")
        top = "\U0010ffff\U0010ffff"  # at the old upper bound: missing from every list
        for key in ("a", "ab", "abc", "abd", "b", "ab\U0010ffff", "a\U0010ffffz", top, top + "z"):
            await store.set_item("ks", key, "1", 10**15)
            await store.incr_counter("ks", key, 1)
        first = await store.items("ks", "ab", 0, limit=2)
        rest = await store.items("ks", "ab", 0, after=first[-1][0], limit=10)
        counters = await store.counters("ks", "a\U0010ffff")
        every = await store.items("ks", "", 0)
        highest = await store.counters("ks", "\U0010ffff")
        await store.close()
        return (
            [k for k, _, _ in first],
            [k for k, _, _ in rest],
            [k for k, _ in counters],
            [k for k, _, _ in every],
            [k for k, _ in highest],
        )

    first, rest, counters, every, highest = asyncio.run(go())
    assert first == ["ab", "abc"]
    assert rest == ["abd", "ab\U0010ffff"]
    assert counters == ["a\U0010ffffz"]
    top = "\U0010ffff\U0010ffff"
    assert every[-2:] == [top, top + "z"] and len(every) == 9
    assert highest == [top, top + "z"]


def test_kv_list_pages_on_the_command_line(tmp_path):
    kv = tmp_path / "kv.sqlite3"
    for key in ("user:1", "user:2", "user:3", "other"):
        assert run_cli("kv", "set", key, "1", "--kv", kv).code == 0
    page = run_cli("kv", "list", "--prefix", "user:", "--limit", "2", "--kv", kv)
    assert page.code == 0, page.stderr
    assert [line.split()[0] for line in page.stdout.splitlines()] == ["user:1", "user:2"]
    assert "more: add --after user:2" in page.stderr
    last = run_cli("kv", "list", "--prefix", "user:", "--after", "user:2", "--kv", kv)
    assert [line.split()[0] for line in last.stdout.splitlines()] == ["user:3"]
    assert "more:" not in last.stderr


def test_a_store_in_memory_has_the_same_schema_as_a_file(tmp_path):
    """Scenarios' stores in memory are copies of a template: the same tables and columns
    (those added since a table first shipped included) as a store on disk."""

    def schema(store: KVStore) -> set[tuple[str, str]]:
        tables = [row[0] for row in store._fast.execute("SELECT name FROM sqlite_master")]
        return {
            (table, column[1])
            for table in tables
            if not table.startswith("sqlite_")
            for column in store._fast.execute(f"PRAGMA table_info({table})")
        }

    on_disk, in_memory = KVStore.open(tmp_path / "kv.sqlite3"), KVStore.open(":memory:")
    assert schema(in_memory) == schema(on_disk) and ("messages", "message_type") in schema(on_disk)
    asyncio.run(in_memory.close())
    asyncio.run(on_disk.close())


def test_a_page_hint_pastes_into_a_shell_and_json_pages_keep_their_limit(tmp_path):
    """The hint was Python's repr: for a key with a backslash the pasted --after asked for
    the same page again, forever. --json printed one row more than --limit."""
    import json
    import shlex

    kv = tmp_path / "kv.sqlite3"
    keys = ["a b\\\\c'1", "a b\\\\c'2", "a b\\\\c'3"]
    for key in keys:
        assert run_cli("kv", "set", key, "1", "--kv", kv).code == 0
    seen, after = [], []
    for _ in range(5):
        page = run_cli("kv", "list", "--limit", "1", "--json", "--kv", kv, *after)
        rows = json.loads(page.stdout)
        assert len(rows) <= 1
        seen += [row["key"] for row in rows]
        hint = [line for line in page.stderr.splitlines() if line.startswith("more: add ")]
        if not hint:
            break
        after = shlex.split(hint[0].removeprefix("more: add "))
    assert seen == sorted(keys)


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (("kv", "list", "--prefix", "\udcff"), "--prefix is not UTF-8 text"),
        (("kv", "counters", "--after", "\udcff"), "--after is not UTF-8 text"),
        (("kv", "list", "--limit", "9223372036854775807"), "--limit"),
        (("kv", "incr", "d", "99999999999999999999"), "64-bit"),
    ],
)
def test_hostile_kv_arguments_are_one_line_and_exit_2(tmp_path, arguments, words):
    run = run_cli(*arguments, "--kv", tmp_path / "kv.sqlite3")
    assert run.code == 2 and words in run.stderr and "Traceback" not in run.stderr


def test_a_counter_never_leaves_64_bit_integers(tmp_path):
    """Past 2^63-1 SQLite stored the sum as a float, which kv export wrote and kv import
    then refused."""
    kv = tmp_path / "kv.sqlite3"
    assert run_cli("kv", "incr", "c", str(2**63 - 1), "--kv", kv).stdout.strip() == str(2**63 - 1)
    over = run_cli("kv", "incr", "c", "1", "--kv", kv)
    assert over.code == 2 and "64-bit" in over.stderr
    listed = run_cli("kv", "counters", "--kv", kv)
    assert listed.stdout.split() == ["c", str(2**63 - 1)]
    assert run_cli("kv", "export", tmp_path / "out.json", "--kv", kv).code == 0
    assert run_cli("kv", "import", tmp_path / "out.json", "--kv", tmp_path / "b.sqlite3").code == 0
