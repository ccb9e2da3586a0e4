"""`pfunc kv` on a real SQLite file (in this process, and in subprocesses where the process
matters: Ctrl-C, another process's lock), and next to a handler that reads it."""

from __future__ import annotations

import json

from tests.conftest import HANDLERS, invoke_cli, run_cli


def kv(tmp_path, command, *args):
    return invoke_cli("kv", command, "--kv", tmp_path / "kv.sqlite3", *args, cwd=tmp_path)


def test_set_get_list_rm(tmp_path):
    assert kv(tmp_path, "set", "user:1", '{"name":"Ada"}', "--ttl", "5").code == 0
    assert kv(tmp_path, "set", "user:2", '"Bob"').code == 0
    assert kv(tmp_path, "set", "other", "1").code == 0
    got = kv(tmp_path, "get", "user:1")
    assert (got.code, json.loads(got.stdout)) == (0, {"name": "Ada"})
    listed = json.loads(kv(tmp_path, "list", "--prefix", "user:", "--json").stdout)
    assert [(i["key"], i["value"]) for i in listed] == [
        ("user:1", {"name": "Ada"}),
        ("user:2", "Bob"),
    ]
    assert kv(tmp_path, "rm", "user:1").code == 0
    missing = kv(tmp_path, "get", "user:1")
    assert (missing.code, missing.stdout) == (1, "")
    assert "no live item under 'user:1'" in missing.stderr


def test_rm_says_whether_anything_was_there(tmp_path):
    """An item, a counter, or nothing under the key (a counter under a longer key that
    starts with it is not the key's): the answer says which, and exits 0 either way."""
    kv(tmp_path, "incr", "hits2")
    nothing = kv(tmp_path, "rm", "hits")
    assert (nothing.code, nothing.stdout) == (0, "nothing under 'hits': nothing removed\n")
    kv(tmp_path, "incr", "hits")
    assert kv(tmp_path, "rm", "hits", "--json").stdout == '{"removed": true}\n'
    assert kv(tmp_path, "rm", "hits", "--json").stdout == '{"removed": false}\n'
    kv(tmp_path, "set", "item", "1")
    assert kv(tmp_path, "rm", "item").stdout == "removed item\n"
    counters = json.loads(kv(tmp_path, "counters", "--json").stdout)
    assert counters == [{"key": "hits2", "value": 1}]  # the longer key's counter stays


def test_values_set_from_the_cli_are_what_handlers_read(tmp_path):
    kv(tmp_path, "set", "shared", '{"from":"cli"}')
    probe = run_cli(
        "run",
        HANDLERS / "kv_errors.js",
        "--kv",
        tmp_path / "kv.sqlite3",
        "--json",
        "--message",
        json.dumps({"call": "get", "args": ["shared"]}),
        cwd=tmp_path,
    )
    assert probe.json()["message"]["result"] == {"from": "cli"}


def test_reading_a_store_not_yet_made_finds_it_empty_and_makes_no_file(tmp_path):
    store = tmp_path / "kv.sqlite3"
    listed = kv(tmp_path, "list", "--json")
    assert (listed.code, json.loads(listed.stdout)) == (0, [])
    assert "no store at" in listed.stderr
    assert kv(tmp_path, "counters").code == 0
    assert kv(tmp_path, "get", "k").code == 1
    assert kv(tmp_path, "export", tmp_path / "out.json").code == 0
    assert json.loads((tmp_path / "out.json").read_text())["items"] == []
    assert not store.exists()
    assert kv(tmp_path, "set", "k", "1").code == 0  # a write makes it
    assert store.exists() and kv(tmp_path, "get", "k").stdout.strip() == "1"


def test_ttl_follows_the_clock(tmp_path):
    kv(tmp_path, "set", "brief", "1", "--ttl", "5", "--now", "2026-01-01T00:00:00Z")
    assert kv(tmp_path, "get", "brief", "--now", "2026-01-01T00:04:00Z").code == 0
    assert kv(tmp_path, "get", "brief", "--now", "2026-01-01T00:06:00Z").code == 1


def test_counters_and_incr(tmp_path):
    assert kv(tmp_path, "incr", "hits").stdout.strip() == "1"
    assert kv(tmp_path, "incr", "hits", "10").stdout.strip() == "11"
    assert kv(tmp_path, "incr", "hits", "--", "-3").stdout.strip() == "8"
    assert kv(tmp_path, "incr", "hits", "-2").stdout.strip() == "6"  # no -- needed
    counters = json.loads(kv(tmp_path, "counters", "--json").stdout)
    assert counters == [{"key": "hits", "value": 6}]


def test_export_clear_import_round_trip(tmp_path):
    kv(tmp_path, "set", "a", '{"x":[1,2]}')
    kv(tmp_path, "incr", "n", "4")
    dump = tmp_path / "dump.json"
    assert "exported 1 item(s), 1 counter(s)" in kv(tmp_path, "export", dump).stdout
    refused = kv(tmp_path, "clear")
    assert refused.code == 2 and "--yes" in refused.stderr
    assert kv(tmp_path, "clear", "--yes").code == 0
    assert kv(tmp_path, "get", "a").code == 1
    assert "imported 1 item(s), 1 counter(s)" in kv(tmp_path, "import", dump).stdout
    assert json.loads(kv(tmp_path, "get", "a").stdout) == {"x": [1, 2]}
    assert json.loads(kv(tmp_path, "counters", "--json").stdout)[0]["value"] == 4


def stored_text(tmp_path, key: str) -> str:
    import contextlib
    import sqlite3

    with contextlib.closing(sqlite3.connect(tmp_path / "kv.sqlite3")) as db:
        return db.execute("SELECT value FROM items WHERE key = ?", (key,)).fetchone()[0]


def test_whatever_a_handler_stored_comes_back_from_an_export_as_it_was(tmp_path):
    """A string a handler stored with setItem (its limit counts the string) was refused by
    import and by kv set (counted as JSON, its escapes doubling it); numbers came back in
    Python's spelling (1e-07, 100000.0), which getItem then returned; an expiry lost its
    milliseconds (an item set at .900 came back 900 ms shorter lived)."""
    handler = tmp_path / "stores.js"
    handler.write_text(
        "const db = require('kvstore');\nexport default async (request) => {\n"
        "  await db.setItem('quotes', '\"'.repeat(20000), 1);\n"
        "  await db.set('numbers', [1e-7, 0.000001, 1e5, 1.5]);\n"
        "  return request.ok();\n};\n"
    )
    store = tmp_path / "kv.sqlite3"
    now = "2026-01-01T12:00:00.900Z"
    ran = run_cli("run", handler, "--kv", store, "--now", now, cwd=tmp_path)
    assert ran.code == 0, ran.stdout
    by_handler = {key: stored_text(tmp_path, key) for key in ("quotes", "numbers")}
    assert by_handler["numbers"] == "[1e-7,0.000001,100000,1.5]"
    dump = tmp_path / "dump.json"
    assert kv(tmp_path, "export", dump, "--now", now).code == 0
    assert kv(tmp_path, "clear", "--yes").code == 0
    imported = kv(tmp_path, "import", dump)
    assert imported.code == 0, imported.stderr
    assert {key: stored_text(tmp_path, key) for key in by_handler} == by_handler
    # Alive at 12:01:00.800, as in the store it came from (exported as 12:01:00.900Z).
    assert kv(tmp_path, "get", "quotes", "--now", "2026-01-01T12:01:00.800Z").code == 0
    # kv set takes what get printed, and writes numbers as JavaScript does.
    printed = kv(tmp_path, "get", "quotes", "--now", now).stdout
    assert kv(tmp_path, "set", "quotes", printed, "--now", now).code == 0
    assert kv(tmp_path, "set", "x", "[1e-7, 0.000001, 1E5, 1.0]").code == 0
    assert stored_text(tmp_path, "x") == "[1e-7,0.000001,100000,1]"
    # And shown as stored, by get, list and history alike (not Python's 1e-07).
    assert kv(tmp_path, "get", "x", "--json").stdout.strip() == "[1e-7, 0.000001, 100000, 1]"
    assert "[1e-7, 0.000001, 100000, 1]" in kv(tmp_path, "list", "--prefix", "x").stdout


def test_a_negative_number_is_a_value_not_an_option(tmp_path):
    assert kv(tmp_path, "set", "balance", "-1").code == 0
    assert kv(tmp_path, "get", "balance").stdout.strip() == "-1"
    published = invoke_cli(
        "publish", "chat", "-1", "--json", "--kv", tmp_path / "kv.sqlite3", cwd=tmp_path
    )
    assert published.code == 0 and json.loads(published.stdout)["message"] == -1
    # Published with no --meta: no meta stored, as for an SDK's publish (it was {}).
    history = invoke_cli("history", "chat", "--json", "--kv", tmp_path / "kv.sqlite3", cwd=tmp_path)
    assert [(m["message"], m["meta"]) for m in json.loads(history.stdout)] == [(-1, None)]


def test_a_mistyped_option_beside_negative_values_is_named_as_an_option(tmp_path):
    store = tmp_path / "kv.sqlite3"
    after = invoke_cli("publish", "chat", '{"a":1}', "--meat", "{}", "--kv", store, cwd=tmp_path)
    assert after.code == 2 and "No such option '--meat'" in after.stderr
    assert "'--meta'" in after.stderr  # and the one meant
    # Before the message, it was taken as the message itself.
    before = invoke_cli("publish", "chat", "--meat", '{"a":1}', "--kv", store, cwd=tmp_path)
    assert before.code == 2 and "No such option '--meat'" in before.stderr
    typo = kv(tmp_path, "set", "k", "-1", "--ttll", "5")
    assert typo.code == 2 and "No such option '--ttll'" in typo.stderr
    assert kv(tmp_path, "get", "k").code == 1  # nothing written
    # An option's own value and anything after -- are values, whatever they look like.
    assert kv(tmp_path, "set", "k", "-1", "--ttl", "-5").code == 0
    assert kv(tmp_path, "set", "--", "-dash", "2").code == 0
    assert kv(tmp_path, "get", "--", "-dash").stdout.strip() == "2"
    assert kv(tmp_path, "incr", "hits", "-5").stdout.strip() == "-5"


def test_a_kv_path_in_a_folder_that_is_not_there_is_refused_not_made(tmp_path):
    typo = tmp_path / "dat" / "kv.sqlite3"  # a slip of the hand: no folder appears
    run = run_cli("kv", "set", "k", "1", "--kv", typo, cwd=tmp_path)
    assert run.code == 2 and f"there is no folder {typo.parent}" in run.stderr
    assert not typo.parent.exists()
    # pfunc's own .pfunc folder is made as ever
    assert run_cli("kv", "set", "k", "1", cwd=tmp_path).code == 0
    assert (tmp_path / ".pfunc" / "kv.sqlite3").is_file()


def test_bad_input_is_refused_with_the_gateway_wording(tmp_path):
    null = kv(tmp_path, "set", "my key", "null")  # a handler could not tell it from nothing
    assert null.code == 2 and "(pfunc kv rm 'my key')" in null.stderr
    not_json = kv(tmp_path, "set", "k", "plain words")
    assert not_json.code == 2 and "VALUE is not JSON" in not_json.stderr
    long_key = kv(tmp_path, "set", "k" * 300, "1")
    assert long_key.code == 2
    assert (
        'kvstore.set: key is 300 characters; the limit is 250 (profile "classic")'
        in long_key.stderr
    )
    clamped = kv(tmp_path, "set", "k", "1", "--ttl", "0")
    assert clamped.code == 0 and "clamped to 1" in clamped.stderr
    bad_import = tmp_path / "x.json"
    bad_import.write_text("{}")
    assert kv(tmp_path, "import", bad_import).code == 2


def test_ctrl_c_during_an_import_writes_nothing_or_says_it_finished(tmp_path):
    """Ctrl-C in the middle of a long import: "Aborted!" (exit 130) and nothing written, or,
    had it already finished, its own report. It used to say "Aborted!" after its one
    transaction had committed everything."""
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    big = tmp_path / "big.json"
    big.write_text(
        json.dumps(
            {
                "format": "pfunc-kv-1",
                "keyset": "sub-c-local",
                "items": [
                    {
                        "key": f"k{n:07d}",
                        "value": {"n": n, "pad": "x" * 50},
                        "expires_at": "2099-01-01T00:00:00Z",
                    }
                    for n in range(200_000)
                ],
                "counters": {},
            }
        )
    )
    store = tmp_path / "kv.sqlite3"
    importing = subprocess.Popen(
        [sys.executable, "-m", "pfunc", "kv", "import", str(big), "--kv", str(store)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    importing.send_signal(signal.SIGINT)
    out, err = importing.communicate(timeout=60)
    count = sqlite3.connect(store).execute("SELECT COUNT(*) FROM items").fetchone()[0]
    if importing.returncode == 0:  # it had finished before the signal
        assert count == 200_000 and "imported 200000" in out
    else:
        assert (importing.returncode, count) == (130, 0) and "Aborted!" in err


def test_ctrl_c_stops_a_command_waiting_for_another_process_lock(tmp_path):
    """`pfunc kv set` waits for another process's write lock; Ctrl-C ends it at once,
    writing nothing. Its wait used to run on a thread of its own that Ctrl-C did not
    reach, and the process went on until the lock's 10 s wait ran out, then printed
    tracebacks."""
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    assert kv(tmp_path, "set", "first", "1").code == 0  # the store exists
    holder = sqlite3.connect(tmp_path / "kv.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held until the command has ended
    try:
        setting = subprocess.Popen(
            [sys.executable, "-m", "pfunc", "kv", "set", "--kv", "kv.sqlite3", "second", "2"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)  # started, and waiting for the lock
        assert setting.poll() is None
        setting.send_signal(signal.SIGINT)
        _, err = setting.communicate(timeout=5)  # (the lock is still held)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert setting.returncode == 130 and "Aborted!" in err and "Traceback" not in err
    assert kv(tmp_path, "get", "second").code == 1


def test_an_imported_counter_past_64_bits_is_named_so(tmp_path):
    data = {"format": "pfunc-kv-1", "keyset": "sub-c-local", "items": [], "counters": {"c": 2**70}}
    (tmp_path / "c.json").write_text(json.dumps(data))
    refused = kv(tmp_path, "import", tmp_path / "c.json")
    assert refused.code == 2 and "outside the 64-bit integers" in refused.stderr


def test_a_stored_value_too_deep_to_read_back_is_named_not_a_traceback(tmp_path):
    """An older pfunc let a handler store a value ~1,000 deep, which broke list, get and
    export of the whole store; now each says which key, and how to remove it."""
    import sqlite3

    assert kv(tmp_path, "set", "normal", '"fine"').code == 0
    deep = "[" * 1000 + "0" + "]" * 1000
    with sqlite3.connect(tmp_path / "kv.sqlite3") as conn:
        conn.execute("INSERT INTO items SELECT keyset, 'deep', ?, expires_at FROM items", (deep,))
    for command in (["list"], ["get", "deep"], ["export", tmp_path / "out.json"]):
        run = kv(tmp_path, *command)
        assert run.code == 2 and "Traceback" not in run.stderr + run.stdout, command
        assert "the value of 'deep' cannot be read back" in run.stderr, command
        assert "remove it with: pfunc kv rm deep" in run.stderr
    assert kv(tmp_path, "rm", "deep").code == 0 and kv(tmp_path, "list").code == 0
    refused = kv(tmp_path, "set", "again", "[" * 600 + "]" * 600)
    assert refused.code == 2 and "nested more than 500 levels deep" in refused.stderr


def test_keys_a_handler_chose_are_shown_escaped_and_the_next_page_pastes_back(tmp_path):
    """An escape sequence in a key restyled the terminal (and was stripped in a pipe), a
    newline split its row, and the --after hint held the stripped key: a wrong page."""
    for key in ("a\x1b[2Jb", "b\nc", "c"):
        assert kv(tmp_path, "set", key, '"v"').code == 0
    page = kv(tmp_path, "list", "--limit", "2")
    assert [row.split("  ")[0] for row in page.stdout.splitlines()] == ["a\\x1b[2Jb", "b\\x0ac"]
    assert "more: add --after $'b\\x0ac'" in page.stderr
    after = kv(tmp_path, "list", "--after", "b\nc")  # what the shell makes of that word
    assert [row.split("  ")[0] for row in after.stdout.splitlines()] == ["c"]
    assert kv(tmp_path, "incr", "n\x07").code == 0
    assert kv(tmp_path, "counters").stdout == "n\\x07  1\n"


def test_export_to_stdout_and_import_from_stdin_with_a_dash(tmp_path):
    """`-` is stdout for export (its summary then on stderr) and stdin for import, as it
    is for --message; /dev/stdout into a pipe says to give -, naming the path as typed."""
    kv(tmp_path, "set", "k", '{"a": 1}')
    kv(tmp_path, "incr", "n", "4")
    exported = kv(tmp_path, "export", "-")
    assert exported.code == 0 and json.loads(exported.stdout)["counters"] == {"n": 4}
    assert "exported 1 item(s), 1 counter(s)" in exported.stderr
    other = tmp_path / "other.sqlite3"
    loaded = invoke_cli("kv", "import", "-", "--kv", other, cwd=tmp_path, stdin=exported.stdout)
    assert loaded.code == 0, loaded.stderr
    again = invoke_cli("kv", "get", "k", "--kv", other, cwd=tmp_path)
    assert json.loads(again.stdout) == {"a": 1}
    named = kv(tmp_path, "export", "./-")  # the usual way to name a file called -
    assert named.code == 0 and named.stdout.startswith("exported") and (tmp_path / "-").is_file()
    both = kv(tmp_path, "export", "-", "--json")
    assert both.code == 2 and "--json and FILE - would both write to stdout" in both.stderr
    piped = run_cli("kv", "export", "/dev/stdout", "--kv", tmp_path / "kv.sqlite3", cwd=tmp_path)
    assert piped.code == 2 and "cannot write /dev/stdout" in piped.stderr
    assert "give -" in piped.stderr and "/proc/" not in piped.stderr


def test_an_import_checks_each_record_as_kv_set_would(tmp_path):
    def imported(items, counters=None):
        data = {"format": "pfunc-kv-1", "items": items, "counters": counters or {}}
        (tmp_path / "i.json").write_text(json.dumps(data))
        return kv(tmp_path, "import", tmp_path / "i.json")

    later = "2027-01-01T00:00:00.000Z"
    # A null an older pfunc let a handler store reads as no item: left out, and said.
    null = imported(
        [
            {"key": "nul", "value": None, "expires_at": later},
            {"key": "b", "value": 2, "expires_at": later},
        ]
    )
    assert null.code == 0 and "items[0] ('nul') holds null" in null.stderr
    assert [item["key"] for item in json.loads(kv(tmp_path, "list", "--json").stdout)] == ["b"]
    assert kv(tmp_path, "clear", "--yes").code == 0
    twice = imported([{"key": "a", "value": 1, "expires_at": later}] * 2)
    assert twice.code == 2 and "items[1] has the key of items[0]" in twice.stderr
    boolean = imported([], {"c": True})
    assert boolean.code == 2 and "must be a whole number, got true" in boolean.stderr
    assert json.loads(kv(tmp_path, "list", "--json").stdout) == []  # nothing of any of them
    # An expiry written without a zone is UTC, as export writes it and --now reads it.
    zoneless = imported([{"key": "a", "value": 1, "expires_at": "2027-01-01T00:00:00"}])
    assert zoneless.code == 0
    listed = json.loads(kv(tmp_path, "list", "--json").stdout)
    assert listed == [{"key": "a", "value": 1, "expires_at": "2027-01-01T00:00:00Z"}]
