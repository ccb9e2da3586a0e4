"""Hostile handlers: whatever a handler does, its execution ends within its limit as an
`error` that names the cause, pfunc's own code is not changed, and the next execution of
another function behaves as before."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest

from pfunc.events import MessageEvent
from pfunc.sandbox import time_limit
from tests.conftest import run_cli

HEALTHY = """
const db = require("kvstore");
export default async (request) => {
  request.message.n = await db.incrCounter("healthy");
  return request.ok();
};
"""

LOOPS = {
    "await null for ever": "export default async (request) => { for (;;) await null; };",
    "a queueMicrotask chain": """
        export default (request) => new Promise(() => {
          const again = () => queueMicrotask(again);
          again();
        });
    """,
    "retrying a refused call": """
        const db = require("kvstore");
        export default async (request) => {
          for (;;) { try { await db.set("k", 1); } catch (e) {} }
        };
    """,
}


def run_then_healthy(harness, folder: Path, source: str, threaded: bool = False):
    """The hostile handler once, then a healthy one in the same engine (and the hostile one
    again, to show its replacement sandbox works)."""
    hostile = folder / "hostile.js"
    hostile.write_text(textwrap.dedent(source))
    healthy = folder / "healthy.js"
    healthy.write_text(HEALTHY)

    async def go():
        async with harness.engine() as engine:
            engine.runtime.threaded = threaded
            bad = engine.functions.executor_for_file(hostile, "hostile.js")
            good = engine.functions.executor_for_file(healthy, "healthy.js")
            first = await bad.run(MessageEvent("before-publish", {}))
            after = await good.run(MessageEvent("before-publish", {}))
            return first, after

    return asyncio.run(go())


@pytest.fixture(params=["pfunc's", "the binding's, watched", "the binding's"])
def time_limits(request, monkeypatch):
    """The limits JavaScript can be held to: pfunc's own (time_limit.py; on threads the
    binding's C handler pinned with pfunc's data, brought forward to the wall clock),
    the binding's own limit brought forward so (where the handler cannot be pinned), and
    the binding's alone, which pfunc falls back to when it does not recognise the binding."""
    assert time_limit.native(), "this binding's layout was not recognised"
    if request.param == "pfunc's":
        assert time_limit.pinned(), "this binding's interrupt handler was not found"
    else:  # (probed, as it would have been, before the fallback is set)
        monkeypatch.setattr(time_limit, "_pinned_handler", False)
    if request.param == "the binding's":
        monkeypatch.setattr(time_limit, "_native", False)
        monkeypatch.setattr(time_limit, "_stoppable", False)
    return request.param


@pytest.mark.parametrize("threaded", [False, True], ids=["cli", "dev-server-thread"])
@pytest.mark.parametrize("name", list(LOOPS))
def test_loops_the_engine_limit_cannot_see_end_at_the_deadline(
    harness, tmp_path, name, threaded, time_limits
):
    harness.limit_overrides = {"timeout": 0.5}
    hostile, healthy = run_then_healthy(harness, tmp_path, LOOPS[name], threaded)
    assert hostile.outcome == "error"
    assert hostile.error.type == "TimeoutError"
    assert "0.5 s time limit" in hostile.error.message
    assert (healthy.outcome, healthy.message) == ("ok", {"n": 1})


# The engine's own promise job throws what a species' resolve throws, and the binding
# words it as the job leaves the engine, with its own limit taken off: a looping toString
# there held a dev-server thread, and the GIL, for good (and under pfunc run was reported
# as pfunc failing). Held by pfunc's limit, or the binding's C handler pinned with
# pfunc's data on threads, it ends as the handler's timeout.
SPECIES_TRAP = """
    export default (request) => {
      class Rigged extends Promise {
        static get [Symbol.species]() {
          return function (executor) {
            executor(() => { throw { toString() { for (;;) {} } }; }, () => {});
          };
        }
      }
      Rigged.resolve(1).then((x) => x);
      return Promise.resolve().then(() => request.ok());
    };
"""


@pytest.mark.parametrize("threaded", [False, True], ids=["cli", "dev-server-thread"])
def test_a_value_worded_as_a_promise_job_leaves_still_ends_at_the_limit(
    harness, tmp_path, threaded
):
    harness.limit_overrides = {"timeout": 0.5}
    hostile, healthy = run_then_healthy(harness, tmp_path, SPECIES_TRAP, threaded)
    assert (hostile.outcome, hostile.error.type) == ("error", "TimeoutError"), hostile.error
    assert "0.5 s time limit" in hostile.error.message
    assert (healthy.outcome, healthy.message) == ("ok", {"n": 1})


@pytest.mark.parametrize("threaded", [False, True], ids=["cli", "dev-server-thread"])
def test_what_an_engine_job_throws_is_the_handlers_error(harness, tmp_path, threaded):
    """A species' resolve that throws an Error: the engine's own promise job throws it,
    where no handler code can catch it. It was reported as pfunc failing ("the execution
    failed inside pfunc"); it is the handler's uncaught error, placed in its file."""
    source = SPECIES_TRAP.replace("{ toString() { for (;;) {} } }", 'new RangeError("boom")')
    hostile, healthy = run_then_healthy(harness, tmp_path, source, threaded)
    assert (hostile.outcome, hostile.error.type) == ("error", "RangeError"), hostile.error
    assert "boom" in hostile.error.message and "inside pfunc" not in hostile.error.message
    assert hostile.error.line == 6, hostile.error
    assert (healthy.outcome, healthy.message) == ("ok", {"n": 1})


def test_a_value_worded_with_the_gil_held_ends_at_the_lease_not_the_limit(harness, tmp_path):
    """On a dev-server thread the binding words that value holding the GIL, so the
    watchdog cannot stop it at the deadline: the pinned C limit was the limit times the
    CPUs (two minutes for a 60 s limit here, every other thread frozen meanwhile). It is
    a lease the watchdog renews, so such a value is stopped within about a second."""
    harness.limit_overrides = {"timeout": 60}
    hostile, healthy = run_then_healthy(harness, tmp_path, SPECIES_TRAP, threaded=True)
    assert (hostile.outcome, hostile.error.type) == ("error", "TimeoutError"), hostile.error
    assert hostile.duration_ms < 30_000  # (the limit is 60 s: far from either side)
    assert (healthy.outcome, healthy.message) == ("ok", {"n": 1})


@pytest.mark.parametrize("threaded", [False, True], ids=["cli", "dev-server-thread"])
def test_top_level_code_awaiting_for_ever_ends_at_the_limit(
    harness, tmp_path, threaded, time_limits
):
    """Each await is an engine entry of its own: the binding's limit, per entry, cannot
    see the loop (pfunc's holds across them); the load's deadline is checked as well."""
    harness.limit_overrides = {"timeout": 0.5}
    source = "for (;;) await null;\nexport default (request) => request.ok();\n"
    hostile, healthy = run_then_healthy(harness, tmp_path, source, threaded)
    assert hostile.outcome == "error"
    assert hostile.error.type == "TimeoutError"
    assert "top-level code ran out of time" in hostile.error.message
    assert (healthy.outcome, healthy.message) == ("ok", {"n": 1})


@pytest.mark.parametrize(
    "source",
    [
        "export default async (request) => { throw null; };",
        "export default (request) => Promise.reject(null);",
    ],
)
def test_a_thrown_null_is_the_handlers_own_error_not_a_memory_error(harness, tmp_path, source):
    """QuickJS reports a Promise chain that exhausts memory as a thrown null; a handler
    that throws null itself, without running such a chain, gets its own error."""
    hostile, healthy = run_then_healthy(harness, tmp_path, source)
    assert (hostile.outcome, hostile.error.type) == ("error", "Error")
    assert "threw a non-Error value: null" in hostile.error.message
    assert "memory" not in hostile.error.message
    assert (healthy.outcome, healthy.message) == ("ok", {"n": 1})


@pytest.mark.parametrize("threaded", [False, True], ids=["pfunc run", "pfunc dev"])
@pytest.mark.parametrize(
    "source",
    [
        # Memory fills in one slice of JavaScript, to the last byte: QuickJS then has no
        # room even for its "out of memory" error and throws null.
        "export default (request) => { const a = []; while (true) a.push('x'.repeat(1000) + a.length); };",
        "export default async (request) => { const a = []; for (let i = 0;; i++) a.push({ i }); };",
    ],
)
def test_memory_filled_in_one_slice_is_a_memory_error_not_a_thrown_null(
    harness, tmp_path, source, threaded
):
    harness.limit_overrides = {"memory_mb": 16}
    hostile, healthy = run_then_healthy(harness, tmp_path, source, threaded=threaded)
    assert (hostile.outcome, hostile.error.type) == ("error", "MemoryError")
    assert "16 MiB memory limit" in hostile.error.message
    assert (healthy.outcome, healthy.message) == ("ok", {"n": 1})


def test_a_thrown_null_the_source_cannot_tell_says_both(harness, tmp_path):
    source = """
        export default (request) => { const value = request.message.missing ?? null; throw value; };
    """
    hostile, healthy = run_then_healthy(harness, tmp_path, source)
    assert (hostile.outcome, hostile.error.type) == ("error", "Error")
    assert (
        "threw a non-Error value: null (or it ran out of its memory limit" in hostile.error.message
    )
    assert (healthy.outcome, healthy.message) == ("ok", {"n": 1})


def test_a_promise_chain_that_grows_for_ever_ends_at_the_memory_limit(harness, tmp_path):
    source = """
        export default (request) => {
          const step = () => Promise.resolve().then(step);
          return step();
        };
    """
    # A small heap fills in a fraction of the time limit, even on a busy machine.
    harness.limit_overrides = {"memory_mb": 16, "timeout": 5}
    hostile, healthy = run_then_healthy(harness, tmp_path, source)
    assert hostile.outcome == "error"
    # When QuickJS can still raise, it is a MemoryError; when the allocation failed inside
    # a Promise job, the engine drops the chain without a word, and the report says both;
    # a machine too slow to fill the heap in time gets the time limit instead.
    if hostile.error.type == "MemoryError":
        assert "16 MiB memory limit" in hostile.error.message
    elif hostile.error.type == "TimeoutError":
        assert "5 s time limit" in hostile.error.message
    else:
        assert "ran out of memory" in hostile.error.message
    assert (healthy.outcome, healthy.message) == ("ok", {"n": 1})


TAMPERING = {
    # Replacing the JSON functions pfunc uses to talk to the host changes nothing.
    "replaces JSON.stringify": (
        """
        const db = require("kvstore");
        JSON.stringify = () => '[true,[[1,"builtin","uuid.v4",[]]]]';
        export default async (request) => {
          await db.set("k", 1);
          return request.ok({ stored: await db.get("k") });
        };
        """,
        ("ok", None),
    ),
    # The host's entry points cannot be replaced (modules are strict: this throws).
    "overwrites an entry point": (
        """
        export default (request) => {
          globalThis.__pfunc_api_poll = () => '[true,[[1,"nope","x",[]]]]';
          return request.ok();
        };
        """,
        ("error", "TypeError"),
    ),
    # pfunc's queue of calls does not use the handler's push: the execution goes on, the
    # report names the built-in, and the sandbox is replaced.
    "breaks Array.prototype.push": (
        """
        const db = require("kvstore");
        export default async (request) => {
          Array.prototype.push = function () { return 0; };
          await db.get("k");
          return request.ok();
        };
        """,
        ("ok", "replaced Array.prototype.push"),
    ),
    # Breaking Map, which pfunc uses to settle calls, ends this execution, not pfunc.
    "breaks Map.prototype.get": (
        """
        const db = require("kvstore");
        export default async (request) => {
          Map.prototype.get = function () { throw new Error("gotcha"); };
          await db.get("k");
          return request.ok();
        };
        """,
        ("error", "Error"),
    ),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_a_handler_cannot_change_what_pfunc_does(harness, tmp_path, name, time_limits):
    source, (outcome, error_type) = TAMPERING[name]
    hostile, healthy = run_then_healthy(harness, tmp_path, source)
    assert hostile.outcome == outcome, hostile.to_json()
    if error_type and outcome == "error":
        assert hostile.error.type == error_type
    elif error_type:
        assert any(error_type in warning for warning in hostile.warnings)
    else:
        assert hostile.message == {"stored": 1}
    assert (healthy.outcome, healthy.message) == ("ok", {"n": 1})


REPORTS = {
    # Too big to report: it was memory, and the report says so.
    "a 40 MB response": (
        "export default (request, response) => response.send('x'.repeat(40 * 1024 * 1024));",
        "MemoryError",
        "64 MiB memory limit",
    ),
    "a status that is not a number": (
        "export default (request, response) => response.send('x', NaN);",
        "TypeError",
        "status must be an HTTP status code",
    ),
    # An interim status is no answer: the client was left waiting for one, in pfunc dev.
    "a 1xx status": (
        "export default (request, response) => response.send('x', 101);",
        "TypeError",
        "status must be an HTTP status code (200 to 599), got 101",
    ),
}


@pytest.mark.parametrize(
    ("call", "said"),
    [
        ("request.ok(() => 1)", "it is a function"),
        ("request.ok(Symbol('s'))", "it is symbol"),
        ("request.ok(NaN)", "it is NaN"),
        ("request.ok(-Infinity)", "it is -Infinity"),
        ("(request.message = () => 1, request.ok())", "it is a function"),
    ],
)
def test_a_message_json_cannot_carry_is_refused_not_delivered_as_null(
    harness, tmp_path, call, said
):
    """Values JSON cannot carry are refused when they are the value itself (decisions.md);
    these ended ok, and pfunc dev published (and stored) null."""
    handler = tmp_path / "ok.js"
    handler.write_text(f"export default (request) => {call};")
    result = harness.run(handler)
    assert result.outcome == "error" and result.error.type == "TypeError"
    assert f"request.ok(): the message is not JSON-serialisable: {said}" in result.error.message


@pytest.mark.parametrize("name", list(REPORTS))
def test_what_cannot_be_reported_as_asked_is_an_error_that_says_why(harness, tmp_path, name):
    source, error_type, words = REPORTS[name]
    handler = tmp_path / "h.js"
    handler.write_text(source)
    result = harness.request(handler)
    assert result.outcome == "error"
    assert result.error.type == error_type
    assert words in result.error.message


def test_a_lone_surrogate_is_replaced_in_logs_and_refused_in_a_message(harness, tmp_path):
    handler = tmp_path / "s.js"
    handler.write_text(
        "export default (request) => { console.log('a\\uD800b'); return request.ok({ s: '\\uD800' }); };"
    )
    result = harness.run(handler)
    assert result.logs[0]["text"] == "a\ufffdb"
    assert result.outcome == "error" and "lone surrogate" in result.error.message
    result.to_json()  # and the report can be written as UTF-8 JSON


def test_a_loop_of_refused_calls_keeps_its_report_small(harness, tmp_path):
    """1,503 calls, 1,500 of them refused: the report lists 1,000 and counts the rest (a
    count of calls, not a time: a loop to a time limit made as many as the machine let)."""
    handler = tmp_path / "retries.js"
    handler.write_text(
        'const db = require("kvstore");\n'
        "export default async (request) => {\n"
        '  for (let i = 0; i < 1503; i++) { try { await db.set("k", 1); } catch (e) {} }\n'
        "  return request.ok();\n};\n"
    )
    operations = harness.run(handler).operations
    assert operations["used"] == 3 and operations["exceeded"]
    assert len(operations["calls"]) == 1000
    assert operations["calls_not_listed"] == 503


def test_a_to_json_trap_at_load_is_a_timeout_not_a_traceback(tmp_path):
    """pfunc sets a toJSON on every object aside while it writes its own load state, and
    reads it to know: a getter there runs the handler's code, under the load's limit."""
    handler = tmp_path / "trap.js"
    handler.write_text(
        'Object.defineProperty(Object.prototype, "toJSON", { configurable: true,'
        " get() { while (true) {} } });\n"
        "export default (request) => request.ok();\n"
    )
    run = run_cli("run", handler, "--timeout", "1", "--kv", tmp_path / "kv.db", "--json")
    assert run.code == 1 and "Traceback" not in run.stderr
    assert run.json()["error"]["type"] == "TimeoutError"


# A handler that changes, in one execution, a built-in pfunc's side of the sandbox runs
# on: (the change, what that execution ends as, words its report has).
BUILT_IN_CHANGES = {
    # A push pfunc no longer relies on to queue calls leaves the execution whole, and is
    # still reported.
    "Array.prototype.push": (
        'Array.prototype.push = function () { throw new Error("no push"); };',
        "ok",
        "Array.prototype.push",
    ),
    "Array.prototype[Symbol.iterator]": (
        "Array.prototype[Symbol.iterator] = function* () {};",
        "ok",
        "Array.prototype[Symbol.iterator]",
    ),
    "a throwing Object.prototype.toJSON": (
        'Object.prototype.toJSON = () => { throw new Error("x"); };',
        "error",
        "replaced Object.prototype.toJSON",
    ),
    # The handler's own message takes it, as JSON.stringify gives it; pfunc's report not.
    "a toJSON that answers a string": (
        'Object.prototype.toJSON = () => "HACKED";',
        "ok",
        "replaced Object.prototype.toJSON",
    ),
    "the global Promise": ("globalThis.Promise = function () {};", "error", "globalThis.Promise"),
    "a getter that throws in push's place": (
        'Object.defineProperty(Array.prototype, "push", { get() { throw new Error("trap"); },'
        " configurable: true });",
        "ok",
        "replaced Array.prototype.push",
    ),
    "a then on every object": (
        "Object.prototype.then = function (resolve) { resolve(1); };",
        None,
        "Object.prototype.then",
    ),
}


@pytest.mark.parametrize("name", list(BUILT_IN_CHANGES))
def test_a_built_in_changed_in_one_execution_never_reaches_the_next(harness, tmp_path, name):
    """The execution that changed it says so (or fails saying so); the next execution of
    the same function runs pfunc's side on the engine's own built-ins again."""
    change, outcome, words = BUILT_IN_CHANGES[name]
    handler = tmp_path / "changes.js"
    handler.write_text(
        'const db = require("kvstore");\n'
        "export default async (request) => {\n"
        f"  if (request.message.change) {{ {change} }}\n"
        '  await db.incrCounter("runs");\n'
        "  return request.ok({ clean: [1, 2].map((n) => n * 2) });\n"
        "};\n"
    )

    changed, clean = harness.runs(handler, [{"change": True}, {}])
    if outcome is not None:
        assert changed.outcome == outcome, changed.to_json()
    report = " ".join([changed.error.message if changed.error else "", *changed.warnings])
    assert words in report
    assert (clean.outcome, clean.message, clean.warnings) == ("ok", {"clean": [2, 4]}, [])


def test_a_polyfill_in_top_level_code_is_the_handlers_own(harness, tmp_path):
    """What top-level code replaces is the baseline: no warning, the context is kept."""
    handler = tmp_path / "polyfill.js"
    handler.write_text(
        "Array.prototype.map = function (f) { const out = [];"
        " for (let i = 0; i < this.length; i++) out.push(f(this[i])); return out; };\n"
        "let runs = 0;\n"
        "export default (request) => request.ok({ runs: ++runs, m: [1, 2].map((n) => n + 1) });\n"
    )

    results = harness.runs(handler, [{}, {}])
    assert [(r.outcome, r.message, r.warnings) for r in results] == [
        ("ok", {"runs": 1, "m": [2, 3]}, []),
        ("ok", {"runs": 2, "m": [2, 3]}, []),
    ]


def test_a_to_json_on_every_array_in_top_level_code_leaves_pfuncs_report_whole(harness, tmp_path):
    """pfunc writes its own report and call queue without the handler's toJSON on every
    object or array (its report's logs became "arr", and every request a 500); the
    handler's own values keep it, as JSON.stringify gives them in production."""
    handler = tmp_path / "arrays.js"
    handler.write_text(
        'Array.prototype.toJSON = () => "arr";\n'
        'const db = require("kvstore");\n'
        "export default async (request) => {\n"
        '  console.log("logged");\n'
        '  await db.set("k", [1, 2]);\n'
        "  return request.ok({ list: [1, 2] });\n"
        "};\n"
    )
    first, second = harness.runs(handler, [{}, {}])
    for result in (first, second):
        assert (result.outcome, result.message, result.warnings) == ("ok", {"list": "arr"}, [])
        assert [line["text"] for line in result.logs] == ["logged"]


def test_a_getter_top_level_code_put_in_a_built_ins_place_is_its_own(harness, tmp_path):
    """A getter that gives a new function on every read is not a change at every
    execution (it replaced the context each time, and module state with it)."""
    handler = tmp_path / "getter.js"
    handler.write_text(
        'Object.defineProperty(Array.prototype, "map", { configurable: true, get() {\n'
        "  return function (f) { const out = [];"
        " for (let i = 0; i < this.length; i++) out[i] = f(this[i]); return out; };\n"
        "} });\n"
        "let runs = 0;\n"
        "export default (request) => request.ok({ runs: ++runs, m: [1, 2].map((n) => n + 1) });\n"
    )
    results = harness.runs(handler, [{}, {}, {}])
    assert [(r.outcome, r.message["runs"], r.warnings) for r in results] == [
        ("ok", 1, []),
        ("ok", 2, []),
        ("ok", 3, []),
    ]


def test_a_module_a_scenario_wrapped_is_not_handed_to_the_next(tmp_path):
    """require()'s module objects are the context's: a handler that wraps db.get in its
    top-level code wrapped it again in every scenario that reused the context."""
    from pfunc.testing.runner import run_scenario
    from pfunc.testing.scenario import load_scenarios

    (tmp_path / "wraps.js").write_text(
        'const db = require("kvstore");\n'
        "const get = db.get;\n"
        'db.get = (key) => { console.log("wrapped"); return get.call(db, key); };\n'
        "export default async (request) => { await db.get('k'); return request.ok(); };\n"
    )
    (tmp_path / "wraps.test.toml").write_text(
        "".join(
            f'[[scenario]]\nname = "s{n}"\nfile = "wraps.js"\n\n[[scenario.step]]\n'
            "publish = { message = {} }\n\n"
            for n in range(3)
        )
    )

    async def logs_of_each():
        lines = []
        for scenario in load_scenarios(tmp_path / "wraps.test.toml"):
            result = await run_scenario(scenario)
            lines.append([line["text"] for line in result.results[0].logs])
        return lines

    assert asyncio.run(logs_of_each()) == [["wrapped"]] * 3


def test_a_built_in_set_to_nan_is_a_change_for_the_next_scenario():
    """The reuse check treats NaN as equal to itself (globalThis.NaN is no change), but
    not as equal to the function it replaced."""
    from pfunc.sandbox.quickjs_host import JavaScriptSandbox

    unchanged = JavaScriptSandbox("export default (r) => r.ok();", "h.js", None, 5.0, reused=True)
    assert unchanged.reusable()
    changed = JavaScriptSandbox("export default (r) => r.ok();", "h.js", None, 5.0, reused=True)
    changed._context.eval("Math.random = NaN;")
    assert not changed.reusable()


@pytest.mark.parametrize(
    ("elapsed", "named"),
    [(36.0, "after 36.0 s"), (6.2, "after 6.2 s"), (10.4, None), (None, None)],
)
def test_a_runaway_stopped_far_from_its_limit_says_how_long_it_ran(elapsed, named):
    """Where pfunc falls back to the binding's limit, the engine counts it in the process's
    CPU time: two busy programs beside pfunc let a 10 s runaway run 36 s, busy threads of
    pfunc's own stopped one at 6 s, and the error said 10 s either way. Far from the
    limit, it says how long and why."""
    from pfunc.limits import resolve_profile
    from pfunc.outcome import timeout_error
    from pfunc.sandbox import TIMEOUT, SandboxInterrupted

    stop = SandboxInterrupted(TIMEOUT, "InternalError: interrupted\n")
    message = timeout_error(stop, "spin.js", resolve_profile("classic"), elapsed).message
    assert "ran longer than the 10 s time limit" in message
    if named is None:
        assert "CPU time" not in message
    else:
        assert named in message and "pfunc's CPU time" in message


UNREADABLE = 'throw {toString() { throw new Error("t"); }, get name() { throw new Error("n"); }}'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (UNREADABLE + ";", "the handler threw a non-Error value: [an object whose toString"),
        (
            'const e = new Error("m"); Object.defineProperty(e, "message", '
            '{ get() { throw new Error("g"); } }); throw e;',
            "the handler threw an error whose name, message or stack cannot be read",
        ),
    ],
)
def test_a_thrown_value_that_cannot_be_read_is_the_handlers_error(
    harness, tmp_path, body, expected
):
    """A value whose toString or getters throw: the handler's own error, said so, not a
    fault 'inside pfunc' that replaces the sandbox; a console line of one says so too."""
    handler = tmp_path / "unreadable.js"
    handler.write_text(f"export default () => {{ {body} }};\n")
    result = harness.run(handler)
    assert result.outcome == "error" and expected in result.error.message, result.error
    assert "inside pfunc" not in result.error.message
    logged = tmp_path / "logged.js"
    logged.write_text(
        "export default (request) => { console.log("
        + UNREADABLE.removeprefix("throw ")
        + "); return request.ok(); };\n"
    )
    shown = harness.run(logged)
    assert shown.outcome == "ok" and shown.logs[0]["text"] == "[an object whose toString throws]"


@pytest.mark.parametrize("language", ["js", "py"])
def test_a_console_flood_is_cut_at_its_budget_and_said_so(harness, tmp_path, language):
    """A Python handler's lines grew pfunc without bound (3 GB for 800 MB of lines); a
    JavaScript one's only stopped at the memory limit, an error."""
    handler = tmp_path / f"flood.{language}"
    if language == "js":
        handler.write_text(
            "export default (request) => {\n"
            "  const s = 'z'.repeat(10000);\n"
            "  for (let i = 0; i < 500; i++) console.log(s, i);\n"
            "  return request.ok();\n};\n"
        )
    else:
        handler.write_text(
            "from pfunc import require\n\nconsole = require('console')\n\n\n"
            "def handler(request):\n"
            "    for i in range(500):\n"
            "        console.log('z' * 10000, i)\n"
            "    return request.ok()\n"
        )
    result = harness.run(handler)
    assert result.outcome == "ok", result.error
    kept = sum(len(line["text"]) for line in result.logs)
    assert 1_000_000 < kept <= 1 << 20 and len(result.logs) == 104
    assert result.warnings == [
        "console output past 1 MiB in one execution was dropped: 396 more line(s)"
    ]


@pytest.mark.parametrize("language", ["js", "py"])
def test_a_flood_of_empty_console_lines_is_cut_too(harness, tmp_path, language):
    """Each line weighs something beside its text: empty ones (200,000 ended a JavaScript
    handler at its memory limit, and grew pfunc in Python) count against the budget."""
    handler = tmp_path / f"empty.{language}"
    handler.write_text(
        "export default (request) => {\n"
        "  for (let i = 0; i < 40000; i++) console.log('');\n"
        "  return request.ok();\n};\n"
        if language == "js"
        else "from pfunc import require\n\nconsole = require('console')\n\n\n"
        "def handler(request):\n"
        "    for _ in range(40000):\n"
        "        console.log('')\n"
        "    return request.ok()\n"
    )
    result = harness.run(handler)
    assert result.outcome == "ok", result.error
    assert len(result.logs) == (1 << 20) // 32
    assert result.warnings == [
        f"console output past 1 MiB in one execution was dropped: {40000 - (1 << 20) // 32} "
        "more line(s)"
    ]


def test_logging_a_proxy_whose_traps_throw_never_fails_the_handler(harness, tmp_path):
    handler = tmp_path / "proxy.js"
    handler.write_text(
        "export default (request) => {\n"
        "  console.log('value:', new Proxy({}, { getPrototypeOf() { throw new Error('gp'); } }));\n"
        "  return request.ok();\n};\n"
    )
    result = harness.run(handler)
    assert result.outcome == "ok", result.error
    assert result.logs[0]["text"] == "value: [an object that cannot be read]"


@pytest.mark.parametrize(
    ("file", "source", "thrown"),
    [
        ("big.js", "export default () => { throw new Error('x'.repeat(4 << 20)); };\n", 4 << 20),
        # A Python worker that sent 30 MB of error "stopped unexpectedly".
        ("big.py", "def handler(request):\n    raise ValueError('x' * (30 << 20))\n", 30 << 20),
    ],
)
def test_a_huge_error_message_is_kept_to_its_start(harness, tmp_path, file, source, thrown):
    handler = tmp_path / file
    handler.write_text(source)
    result = harness.run(handler)
    assert result.outcome == "error" and len(result.error.message) < 70_000, result.error
    assert result.error.message.endswith(f"... ({thrown - 65536} more characters)")


def test_caught_calls_of_a_non_function_in_a_minified_handler_stay_cheap(harness, write_handler):
    """Naming the callee reads the handler's source; a minified handler is one line of
    ~180 KB, and a loop that catches the same failed call 2,000 times had the reader scan
    that line each time: the execution ran out of time. One reading per place, at a
    bounded cost, serves them all."""
    filler = "".join(f"var a{i} = {{x: 1, y: [1, 2, 3], s: 'str(ing'}};" for i in range(4000))
    source = filler + (
        "export default (request) => { const o = {}; let n = 0, last; "
        "for (let i = 0; i < 2000; i++) { try { o.x(request.message, i); } "
        "catch (e) { n++; last = e.message; } } return request.ok({ n, last }); };\n"
    )
    result = harness.run(write_handler(source, "minified.js"))
    assert result.outcome == "ok", result.error
    assert result.message == {"n": 2000, "last": "o.x is not a function"}


def test_a_failed_call_rejects_even_when_its_stack_cannot_be_written(harness, write_handler):
    """A module call's rejection reaches the handler without its call site's frames when
    those cannot be written (a built-in the stack writer uses, replaced while the call was
    under way): it had made settling fail, and the execution an error of pfunc's."""
    handler = write_handler(
        """
        const db = require("kvstore");
        export default async (request) => {
          const map = Array.prototype.map;
          const pending = db.get("");
          Array.prototype.map = function () { throw new Error("map replaced"); };
          try { await pending; } catch (e) { request.message.caught = e.message; }
          Array.prototype.map = map;
          return request.ok();
        };
        """,
        "settled.js",
    )
    result = harness.run(handler)
    assert result.outcome == "ok", result.error
    assert result.message["caught"] == "kvstore.get: key is empty; pass a non-empty key"


def test_a_replaced_built_in_never_breaks_how_a_failed_call_is_worded(harness, write_handler):
    """The callee reader runs in the handler's realm: with String.prototype.slice and
    RegExp.prototype.test replaced by throwing functions, a failed call still throws its
    TypeError (QuickJS's words), never the replacement's error, and its stack is still
    written (a throwing built-in in the column count had left every error's stack null)."""
    handler = write_handler(
        """
        export default (request) => {
          String.prototype.slice = () => { throw new Error("slice replaced"); };
          RegExp.prototype.test = () => { throw new Error("test replaced"); };
          const o = {};
          let said;
          try { o.n(); } catch (e) { said = e.name + ": " + e.message + " | " + e.stack; }
          return request.ok({ said });
        };
        """,
        "replaced.js",
    )
    result = harness.run(handler)
    assert result.outcome == "ok", result.error
    said = result.message["said"]
    name_and_message, stack = said.split(" | ")
    assert name_and_message == "TypeError: not a function"
    assert stack.startswith("TypeError: not a function\n    at replaced.js:"), stack


def test_errors_on_a_long_line_with_accents_stay_cheap(harness, write_handler):
    """Every error's column is counted in characters; on a minified line of 180 KB with
    an "é" in it, counting from the line's start at each of 2,000 caught errors ran the
    execution out of time. The line's non-ASCII characters are tabled once."""
    filler = "".join(f"var a{i} = {{x: 1, s: 'stré'}};" for i in range(6000))
    source = filler + (
        "export default (request) => { let n = 0; for (let i = 0; i < 2000; i++) { "
        "try { throw new Error('x'); } catch (e) { n++; } } return request.ok({ n }); };\n"
    )
    result = harness.run(write_handler(source, "accented.js"))
    assert result.outcome == "ok", result.error
    assert result.message == {"n": 2000}


def test_a_callee_is_named_by_the_globals_of_the_moment(harness, write_handler):
    """In o.x(g(1)), g missing names g; once g is a function, the same place names o.x
    (a reading kept from the first failure had named g again)."""
    source = (
        "export default (request) => {\n"
        "  const o = {}; const said = [];\n"
        "  const call = () => o.x(globalThis.g(1));\n"
        "  try { call(); } catch (e) { said.push(e.message); }\n"
        "  globalThis.g = () => 1;\n"
        "  try { call(); } catch (e) { said.push(e.message); }\n"
        "  return request.ok(said);\n"
        "};\n"
    )
    result = harness.run(write_handler(source, "moment.js"))
    assert result.outcome == "ok", result.error
    assert result.message == ["globalThis.g is not a function", "o.x is not a function"]


def test_an_engine_error_with_no_words_is_read_as_memory_running_out(harness, write_handler):
    """QuickJS, out of room, can raise an InternalError with no message (met under load,
    with memory filled in one slice): reported as the memory limit, as its thrown null is.
    Only the engine makes such an error in practice; one a handler made is read alike."""
    harness.limit_overrides = {"memory_mb": 16}
    result = harness.run(write_handler('export default () => { throw new InternalError(""); };'))
    assert (result.outcome, result.error.type) == ("error", "MemoryError"), result.error


# Handler code the binding runs while it words an exception (a thrown value's toString,
# an error's stack), with Python not set aside: a host call made there must not reach
# Python at once (it took the process down: a fatal error, exit 134).
CALLS_WHILE_AN_ERROR_IS_WORDED = {
    "a thrown value's toString": """
        const db = require("kvstore");
        export default (request) => {
          queueMicrotask(() => { throw { toString() { db.get("k"); return "x"; } }; });
          return request.ok();
        };
        """,
    "Error.prototype.toString, at the time limit": """
        const db = require("kvstore");
        Error.prototype.toString = function () { db.get("k"); return "x"; };
        export default (request) => { for (;;) {} };
        """,
}


@pytest.mark.parametrize("name", list(CALLS_WHILE_AN_ERROR_IS_WORDED))
def test_a_call_made_while_an_error_is_worded_never_takes_pfunc_down(tmp_path, name):
    handler = tmp_path / "worded.js"
    handler.write_text(textwrap.dedent(CALLS_WHILE_AN_ERROR_IS_WORDED[name]))
    run = run_cli("run", handler, "--message", "{}", "--json", "--timeout", "0.5")
    assert run.code in (0, 1), run.stderr[-600:]
    report = json.loads(run.stdout)
    assert report["outcome"] in ("ok", "error")


ENGINE_STOP_TRAPS = {
    # A getter that never returns where the binding reads the engine's own stop (the
    # time limit's uncatchable error) as it leaves the engine, with no limit running.
    "stack": """
        export default async (request, response) => {
          Error.prototype.toString = () => { for (;;) {} };
          Object.defineProperty(Error.prototype, "stack", { get() { for (;;) {} }, configurable: true });
          throw new Error("boom");
        };
    """,
    # Where the binding words that error as text: Symbol.toPrimitive, up its prototypes.
    "primitive": """
        export default async (request, response) => {
          Object.defineProperty(Object.prototype, Symbol.toPrimitive, {
            value() { for (;;) {} }, configurable: true, writable: true });
          Error.prototype[Symbol.toPrimitive] = function () { for (;;) {} };
          for (;;) {}
        };
    """,
    # A value thrown while pfunc writes the report (a toJSON getter) left pfunc's entry.
    "report": """
        export default async (request, response) => {
          await response.send("x");
          Object.defineProperty(Object.prototype, "toJSON", { get() {
            throw { toString() { for (;;) {} }, get stack() { for (;;) {} } }; }, configurable: true });
        };
    """,
    # A handler's Error.prepareStackTrace gave the time limit's error a toPrimitive.
    "prepare": """
        export default async (request, response) => {
          Error.prepareStackTrace = (error) => {
            Object.defineProperty(error, Symbol.toPrimitive, { value() { for (;;) {} } });
            return "";
          };
          for (;;) {}
        };
    """,
    # Values faking the engine's own error, thrown while the report is written.
    "fake": """
        export default async (request, response) => {
          await response.send("x");
          const fake = new Proxy({}, { getPrototypeOf() { return InternalError.prototype; },
                                       get() { for (;;) {} } });
          Object.defineProperty(Object.prototype, "toJSON", { get() { throw fake; }, configurable: true });
        };
    """,
    # A FinalizationRegistry's cleanup runs as a job of its own.
    "cleanup": """
        export default async (request, response) => {
          globalThis.kept = new FinalizationRegistry(() => { throw { toString() { for (;;) {} } }; });
          globalThis.kept.register({}, 1);
          await null;
          return response.send("x");
        };
    """,
    # A Promise subclass's species whose resolve throws: the engine's own promise job
    # throws the value, and the binding words it with its own limit taken off.
    "species": """
        export default async (request, response) => {
          class Rigged extends Promise {
            static get [Symbol.species]() {
              return function (executor) {
                executor(() => { throw { toString() { for (;;) {} } }; }, () => {});
              };
            }
          }
          Rigged.resolve(1).then((x) => x);
          await null;
          return response.send("after");
        };
    """,
    # A microtask's exception left the engine as the job's, worded there the same way.
    "microtask": """
        export default async (request, response) => {
          queueMicrotask(() => { throw { get stack() { for (;;) {} }, toString() { for (;;) {} } }; });
          await null;
          return response.send("after");
        };
    """,
}


def test_a_handler_cannot_hold_the_dev_server_where_the_engine_stops_it(tmp_path):
    """Each of these held a dev server thread, and the GIL with it, for good: no request
    was answered again, and only SIGKILL stopped the server (run and test were fine: their
    own limit stays armed there). Now each is a timeout, and the server goes on."""
    from tests.dev_harness import DevProcess

    toml = (
        '[project]\nsubscribe_key = "sub-c-h"\npublish_key = "pub-c-h"\n\n[limits]\ntimeout = 1\n'
    )
    for name, source in ENGINE_STOP_TRAPS.items():
        (tmp_path / f"{name}.js").write_text(textwrap.dedent(source))
        toml += f'\n[[functions]]\nname = "{name}"\nfile = "{name}.js"\nevent = "on-request"\npath = "{name}"\n'
    (tmp_path / "pfunc.toml").write_text(toml)
    server = DevProcess(tmp_path)
    try:
        for name in ENGINE_STOP_TRAPS:
            status, _, body = server.request("GET", f"/v1/blocks/sub-key/sub-c-h/{name}")
            if name == "cleanup":  # (its exception has no execution to fail)
                assert status == 200, body
            else:
                assert status == (503 if "time limit" in body else 500), body
                assert "time limit" in body or "replaced" in body, body
            assert server.request("GET", "/time/0")[0] == 200
    finally:
        server.stop()
    assert server.process.returncode == 0  # stopped by SIGTERM, not killed


def test_a_load_error_thrown_where_pfunc_reads_the_load_keeps_its_place(tmp_path):
    """Errors pfunc's entry points let out are copies made inside (so that nothing of the
    handler's runs where the binding words them): a top-level toJSON getter's throw still
    names its line, as before the copies."""
    handler = tmp_path / "loadstate.js"
    handler.write_text(
        'Object.defineProperty(Object.prototype, "toJSON", { get() { throw new Error("boom"); },'
        " configurable: true });\nexport default (request) => request.ok();\n"
    )
    error = run_cli("run", handler, "--json").json()["error"]
    assert (error["type"], error["line"]) == ("Error", 1), error
    assert "boom" in error["message"] and "__pfunc" not in error["message"]
