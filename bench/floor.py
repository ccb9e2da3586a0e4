"""The floor: the same handler work with no pfunc layers (no budget, validation, host-call
queue, asyncio or thread hops), on bare QuickJS and raw sqlite3 with the same SQL and
pragmas. Every pfunc figure in bench/run.py is printed beside the floor measured in the
same run on the same machine.

Two more floors are diagnostics, not targets: they keep PubNub's ordering, in which a
host call's Promise settles only after the JavaScript that made it has run to its next
wait (a KV call is a network call in production). `rounds` performs each call at once
(as the floor does) but releases its Promise at that boundary; `queued` also holds every
entry into the engine to the binding's own time limit, which allows no calls into Python,
so calls are queued and drained after each slice. pfunc stands on `queued`: its own time
limit (pfunc/sandbox/time_limit.py) would allow calls into Python, but the binding runs
some handler code without setting Python aside, where such a call ends the process, so
pfunc's prelude queues its calls too (docs/decisions.md)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import quickjs

# How a host call's result reaches the handler, per ordering (see the module's docstring).
_CALLS = {
    "immediate": "function __floor_call(op, args) { return Promise.resolve(op(...args)); }",
    "rounds": """
var __floor_ready = [];
function __floor_call(op, args) {
  const value = op(...args);
  return new Promise((resolve) => __floor_ready.push([resolve, value]));
}
function __floor_release() {
  const ready = __floor_ready.splice(0);
  for (const [resolve, value] of ready) resolve(value);
  return ready.length;
}""",
    "queued": """
var __floor_queue = [], __floor_waiting = new Map(), __floor_next = 1;
function __floor_call(op, args) {
  const id = __floor_next++;
  __floor_queue.push([id, op.name, args]);
  return new Promise((resolve) => __floor_waiting.set(id, resolve));
}
function __floor_poll() {
  if (__floor_queue.length === 0) return "";
  const text = JSON.stringify(__floor_queue);
  __floor_queue.length = 0;
  return text;
}
function __floor_settle(id, value) {
  const resolve = __floor_waiting.get(id);
  __floor_waiting.delete(id);
  resolve(value);
}""",
}

_SHIM = """
var __floor_handler;
var console = { log() {}, info() {}, warn() {}, error() {} };  // the rate limiter warns
const __db = {
  getItem: (key) => __floor_call(__floor_get, [key]).then((text) =>
    text === null ? null : (text[0] === '"' ? JSON.parse(text) : text)),
  get: (key) => __floor_call(__floor_get, [key]).then((t) => t === null ? null : JSON.parse(t)),
  incrCounter: (key, n) => __floor_call(__floor_incr, [key, n === undefined ? 1 : n]),
  set: (key, value, ttl) => __floor_call(__floor_set, [key, JSON.stringify(value),
    ttl === undefined ? 1440 : ttl]),
};
function require(name) { return __db; }
function __floor_run(json) {
  globalThis.__floor_out = null;
  const request = JSON.parse(json);
  const response = { send: (body, status) => { globalThis.__floor_out = JSON.stringify(body);
                                               return Promise.resolve(); } };
  request.ok = () => { globalThis.__floor_out = JSON.stringify(request.message);
                       return Promise.resolve(); };
  request.abort = () => { globalThis.__floor_out = "abort"; return Promise.resolve(); };
  __floor_handler(request, response);
}
"""


class FloorStore:
    """The KV calls as raw sqlite3 statements: pfunc's SQL and pragmas, nothing else."""

    def __init__(self, database: Path) -> None:
        self.conn = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(
            "CREATE TABLE IF NOT EXISTS items (keyset TEXT, key TEXT, value TEXT,"
            " expires_at INTEGER, PRIMARY KEY (keyset, key)) WITHOUT ROWID;"
            "CREATE TABLE IF NOT EXISTS counters (keyset TEXT, key TEXT, value INTEGER,"
            " PRIMARY KEY (keyset, key)) WITHOUT ROWID;"
        )

    def get(self, key: str) -> str | None:
        row = self.conn.execute(
            "SELECT value FROM items WHERE keyset=? AND key=? AND expires_at>?",
            ("k", key, int(time.time() * 1000)),
        ).fetchone()
        return row[0] if row else None

    def incr(self, key: str, amount: int) -> int:
        return self.conn.execute(
            "INSERT INTO counters(keyset,key,value) VALUES(?,?,?) ON CONFLICT(keyset,key) "
            "DO UPDATE SET value=value+excluded.value RETURNING value",
            ("k", key, amount),
        ).fetchone()[0]

    def put(self, key: str, text: str, ttl: float) -> None:
        self.conn.execute(
            "INSERT INTO items(keyset,key,value,expires_at) VALUES(?,?,?,?) "
            "ON CONFLICT(keyset,key) DO UPDATE SET value=excluded.value, "
            "expires_at=excluded.expires_at",
            ("k", key, text, int(time.time() * 1000 + ttl * 60000)),
        )


class FloorHandler:
    """One handler file on bare QuickJS with raw sqlite3 KV calls."""

    def __init__(
        self, handler: Path, database: Path, ordering: str = "immediate", time_limit: float = 10.0
    ) -> None:
        self.ordering = ordering
        self.time_limit = time_limit  # seconds, per entry into the engine ("queued" only)
        store = FloorStore(database)
        self.context = quickjs.Context()
        operations = {
            "__floor_get": store.get,
            "__floor_incr": store.incr,
            "__floor_set": store.put,
        }
        if ordering == "queued":  # performed by name when drained, never called from JS
            self._operations = operations
            self.context.eval("".join(f"function {name}() {{}}\n" for name in operations))
        else:
            for name, operation in operations.items():
                self.context.add_callable(name, operation)
        self.context.eval(_CALLS[ordering] + _SHIM)
        self.context.module(handler.read_text().replace("export default", "__floor_handler ="))
        self._run = self.context.get("__floor_run")
        # The ordering's own entry points, read once as pfunc reads its own.
        entry = self.context.get
        if ordering == "rounds":
            self._release = entry("__floor_release")
        elif ordering == "queued":
            self._poll, self._settle = entry("__floor_poll"), entry("__floor_settle")

    def run(self, request: dict) -> str:
        """One execution; the handler's ok() message, response body, or "abort"."""
        if self.ordering == "queued":
            return self._run_queued(request)
        self._run(json.dumps(request))
        self._drain()
        if self.ordering == "rounds":
            while self._release():
                self._drain()
        return self.context.get("__floor_out")

    def _drain(self) -> None:
        while self.context.execute_pending_job():
            pass

    def _run_queued(self, request: dict) -> str:
        context = self.context
        context.set_time_limit(self.time_limit)  # every entry below runs under it, as pfunc's do
        try:
            self._run(json.dumps(request))
            self._drain()
            while text := self._poll():
                for call_id, name, args in json.loads(text):
                    self._settle(call_id, self._operations[name](*args))
                self._drain()
        finally:
            context.set_time_limit(-1.0)
        return context.get("__floor_out")


class SandboxFloor:
    """A diagnostic: pfunc's own sandbox (its prelude, PubNub's order, the time limit, the
    report) driven by the leanest loop, the KV calls performed straight on FloorStore.
    What pfunc's Python layers (the executor, the loop, the budget, the modules' checks,
    the result) add is pfunc's time beside this; what the sandbox adds is this beside
    the `queued` floor."""

    def __init__(self, handler: Path, database: Path, time_limit: float = 10.0) -> None:
        from pfunc.sandbox.quickjs_host import JavaScriptSandbox

        self.store = FloorStore(database)
        self.time_limit = time_limit
        self.sandbox = JavaScriptSandbox(handler.read_text(), handler.name, None, time_limit)

    def _perform(self, method: str, encoded: list[dict]) -> str | None:
        """A queued call's answer as pfunc's kvstore gives it (JSON text; None: undefined)."""
        args = [json.loads(arg["j"]) if "j" in arg else arg.get("v") for arg in encoded]
        if method == "incrCounter":
            return str(self.store.incr(args[0], 1 if len(args) < 2 else args[1]))
        if method == "set":
            ttl = args[2] if len(args) > 2 and args[2] is not None else 1440
            self.store.put(args[0], json.dumps(args[1], separators=(",", ":")), ttl)
            return None
        text = self.store.get(args[0])  # get, getItem
        if text is None:
            return "null"
        return text if method == "get" or text.startswith('"') else json.dumps(text)

    def run(self, request: dict) -> dict:
        """One execution of a before-publish event; the sandbox's report."""
        event = {
            "kind": "before-publish",
            "family": "message",
            "phase": "before",
            "verb": "publish",
            "params": {},
            "meta": None,
            **request,
        }
        sandbox = self.sandbox
        _, calls = sandbox.advance(self.time_limit, [], (json.dumps(event), None))
        while calls:
            answers = [(call[0], True, self._perform(call[2], call[3])) for call in calls]
            _, calls = sandbox.advance(self.time_limit, answers)
        report = sandbox.finish()
        return report if isinstance(report, dict) else {}
