"""Listing KV keys by prefix a page at a time: a range on the primary key (so a page costs
the same whatever the store's size), proven equal to "starts with" for any text."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from pfunc.store import KVStore, key_range
from tests.conftest import run_cli

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)


@given(prefix=text, key=text, after=st.none() | text)
def test_the_range_holds_exactly_the_keys_with_the_prefix(prefix, key, after):
    low, high = key_range(prefix, after)
    # SQLite compares text by UTF-8 bytes: the same order as code points.
    inside = low.encode() <= key.encode() < high.encode()
    assert inside == (key.startswith(prefix) and (after is None or key > after or after < prefix))


def test_pages_of_items_and_counters_from_a_real_store(tmp_path):
    async def go():
        store = KVStore.open(tmp_path / "kv.sqlite3")
        for key in ("a", "ab", "abc", "abd", "b", "ab\U0010ffff", "a\U0010ffffz"):
            await store.set_item("ks", key, "1", 10**15)
            await store.incr_counter("ks", key, 1)
        first = await store.items("ks", "ab", 0, limit=2)
        rest = await store.items("ks", "ab", 0, after=first[-1][0], limit=10)
        counters = await store.counters("ks", "a\U0010ffff")
        await store.close()
        return [k for k, _, _ in first], [k for k, _, _ in rest], [k for k, _ in counters]

    first, rest, counters = asyncio.run(go())
    assert first == ["ab", "abc"]
    assert rest == ["abd", "ab\U0010ffff"]
    assert counters == ["a\U0010ffffz"]


def test_kv_list_pages_on_the_command_line(tmp_path):
    kv = tmp_path / "kv.sqlite3"
    for key in ("user:1", "user:2", "user:3", "other"):
        assert run_cli("kv", "set", key, "1", "--kv", kv).code == 0
    page = run_cli("kv", "list", "--prefix", "user:", "--limit", "2", "--kv", kv)
    assert page.code == 0, page.stderr
    assert [line.split()[0] for line in page.stdout.splitlines()] == ["user:1", "user:2"]
    assert "more: add --after 'user:2'" in page.stderr
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
