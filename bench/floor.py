"""The floor: the same handler work with no pfunc layers (no budget, validation, host-call
queue, asyncio or thread hops), on bare QuickJS and raw sqlite3 with the same SQL and
pragmas. Every pfunc figure in bench/run.py is printed beside the floor measured in the
same run on the same machine."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import quickjs

_SHIM = """
var __floor_handler;
const __db = {
  getItem: (key) => Promise.resolve(__floor_get(key)).then((text) =>
    text === null ? null : (text[0] === '"' ? JSON.parse(text) : text)),
  get: (key) => Promise.resolve(__floor_get(key)).then((t) => t === null ? null : JSON.parse(t)),
  incrCounter: (key, n) => Promise.resolve(__floor_incr(key, n === undefined ? 1 : n)),
  set: (key, value, ttl) => Promise.resolve(__floor_set(key, JSON.stringify(value),
    ttl === undefined ? 1440 : ttl)),
};
function require(name) { return __db; }
function __floor_run(json) {
  const request = JSON.parse(json);
  const response = { send: (body, status) => { globalThis.__floor_out = JSON.stringify(body);
                                               return Promise.resolve(); } };
  request.ok = () => { globalThis.__floor_out = JSON.stringify(request.message);
                       return Promise.resolve(); };
  request.abort = () => { globalThis.__floor_out = "abort"; return Promise.resolve(); };
  __floor_handler(request, response);
}
"""


class FloorHandler:
    """One handler file on bare QuickJS with raw sqlite3 KV calls."""

    def __init__(self, handler: Path, database: Path) -> None:
        self.conn = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(
            "CREATE TABLE IF NOT EXISTS items (keyset TEXT, key TEXT, value TEXT,"
            " expires_at INTEGER, PRIMARY KEY (keyset, key)) WITHOUT ROWID;"
            "CREATE TABLE IF NOT EXISTS counters (keyset TEXT, key TEXT, value INTEGER,"
            " PRIMARY KEY (keyset, key)) WITHOUT ROWID;"
        )
        self.context = quickjs.Context()
        self.context.add_callable("__floor_get", self._get)
        self.context.add_callable("__floor_incr", self._incr)
        self.context.add_callable("__floor_set", self._put)
        self.context.eval(_SHIM)
        self.context.module(handler.read_text().replace("export default", "__floor_handler ="))
        self._run = self.context.get("__floor_run")

    def _get(self, key: str) -> str | None:
        row = self.conn.execute(
            "SELECT value FROM items WHERE keyset=? AND key=? AND expires_at>?",
            ("k", key, int(time.time() * 1000)),
        ).fetchone()
        return row[0] if row else None

    def _incr(self, key: str, amount: int) -> int:
        return self.conn.execute(
            "INSERT INTO counters(keyset,key,value) VALUES(?,?,?) ON CONFLICT(keyset,key) "
            "DO UPDATE SET value=value+excluded.value RETURNING value",
            ("k", key, amount),
        ).fetchone()[0]

    def _put(self, key: str, text: str, ttl: float) -> None:
        self.conn.execute(
            "INSERT INTO items(keyset,key,value,expires_at) VALUES(?,?,?,?) "
            "ON CONFLICT(keyset,key) DO UPDATE SET value=excluded.value, "
            "expires_at=excluded.expires_at",
            ("k", key, text, int(time.time() * 1000 + ttl * 60000)),
        )

    def run(self, request: dict) -> str:
        """One execution; the handler's ok() message, response body, or "abort"."""
        self._run(json.dumps(request))
        while self.context.execute_pending_job():
            pass
        return self.context.get("__floor_out")
