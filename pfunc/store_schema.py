"""The KV store's SQLite schema: every table pfunc keeps in a project's store, the columns
added since a table first shipped, and the mark that tells a pfunc store from any other
database. store.py opens the file; this module says what belongs in it, and brings an
older (or brand-new) file up to date."""

from __future__ import annotations

import re
import sqlite3

from pfunc.store_contention import commit_or_roll_back

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    keyset TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,          -- JSON text
    expires_at INTEGER NOT NULL,  -- ms since the epoch, on the execution clock
    PRIMARY KEY (keyset, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    keyset TEXT NOT NULL,
    key TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (keyset, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (   -- message persistence (pfunc/history.py)
    keyset TEXT NOT NULL,
    channel TEXT NOT NULL,
    timetoken INTEGER NOT NULL,
    message TEXT NOT NULL,        -- JSON text
    meta TEXT,                    -- JSON text, or NULL
    publisher TEXT,
    custom_type TEXT,
    expires_at INTEGER,           -- ms since the epoch; NULL: kept
    PRIMARY KEY (keyset, channel, timetoken)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS push_devices (   -- mobile push registrations
    keyset TEXT NOT NULL,
    kind TEXT NOT NULL,
    token TEXT NOT NULL,
    topic TEXT NOT NULL,
    environment TEXT NOT NULL,
    channel TEXT NOT NULL,
    PRIMARY KEY (keyset, kind, token, topic, environment, channel)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channel_groups (
    keyset TEXT NOT NULL,
    grp TEXT NOT NULL,
    channel TEXT NOT NULL,
    PRIMARY KEY (keyset, grp, channel)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS message_actions (   -- reactions and receipts on messages
    keyset TEXT NOT NULL,
    channel TEXT NOT NULL,
    action_timetoken INTEGER NOT NULL,
    message_timetoken INTEGER NOT NULL,
    type TEXT NOT NULL,
    value TEXT NOT NULL,
    uuid TEXT NOT NULL,
    PRIMARY KEY (keyset, channel, action_timetoken)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS app_context (   -- users' and channels' metadata (app_context.py)
    keyset TEXT NOT NULL,
    kind TEXT NOT NULL,           -- uuid or channel
    id TEXT NOT NULL,
    record TEXT NOT NULL,         -- JSON text: the fields, custom, status, type
    updated TEXT NOT NULL,        -- ISO 8601, as PubNub answers it
    etag TEXT NOT NULL,
    PRIMARY KEY (keyset, kind, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS app_context_links (   -- memberships: a uuid in a channel
    keyset TEXT NOT NULL,
    uuid TEXT NOT NULL,
    channel TEXT NOT NULL,
    record TEXT NOT NULL,         -- JSON text: custom, status, type
    updated TEXT NOT NULL,
    etag TEXT NOT NULL,
    PRIMARY KEY (keyset, uuid, channel)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS app_context_members ON app_context_links(keyset, channel);
CREATE TABLE IF NOT EXISTS revoked_tokens (   -- Access Manager v3 revocations (pfunc/access.py)
    keyset TEXT NOT NULL,
    signature TEXT NOT NULL,      -- hex of the token's signature
    expires_at INTEGER NOT NULL,  -- Unix seconds; the token is expired after it anyway
    PRIMARY KEY (keyset, signature)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS auth_grants (   -- Access Manager v2 grants to auth keys
    keyset TEXT NOT NULL,
    kind TEXT NOT NULL,           -- channel, channel-group, uuid, or keyset (every resource)
    name TEXT NOT NULL,
    auth TEXT NOT NULL,           -- '': every auth key
    permissions INTEGER NOT NULL, -- PubNub's permission bits
    expires_at INTEGER,           -- Unix seconds; NULL: no expiry
    PRIMARY KEY (keyset, kind, name, auth)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files (   -- shared files (pfunc/files.py); bytes in files/<id>
    keyset TEXT NOT NULL,
    channel TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    created INTEGER NOT NULL,     -- ms since the epoch, on the execution clock
    PRIMARY KEY (keyset, channel, id)
) WITHOUT ROWID;
"""

# Columns added after their table first shipped: (table, column, declaration). A store
# from before gains them when opened; CREATE TABLE IF NOT EXISTS leaves old tables as
# they were.
ADDED_COLUMNS = [
    ("messages", "message_type", "INTEGER"),  # PubNub's message type: NULL plain, 4 a file
]


def lacked_columns(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """The columns of ADDED_COLUMNS the store's tables lack (reads only)."""
    lacked = []
    for table, column, declaration in ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            lacked.append((table, column, declaration))
    return lacked


def add_columns(conn: sqlite3.Connection) -> None:
    """The columns of ADDED_COLUMNS a store lacks; under the write lock when other
    processes may open the same file (store.py)."""
    for table, column, declaration in lacked_columns(conn):
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


# Marks a file as a pfunc store (SQLite's application_id): 'pfkv'. A file that holds other
# tables is someone else's database and is refused without being changed.
APPLICATION_ID = 0x70666B76
OUR_TABLES = frozenset(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA))
# Each table's primary-key columns, which it has had since it first shipped (a key cannot
# be added later): a table of that name without them is another program's.
FIRST_COLUMNS = {
    match[0]: {column.strip() for column in match[1].split(",")}
    for statement in SCHEMA.split("CREATE ")
    for match in re.findall(
        r"TABLE IF NOT EXISTS (\w+) \(.*PRIMARY KEY \(([^)]*)\)", statement, re.S
    )
}


def bring_up_to_date(conn: sqlite3.Connection, marked: bool) -> None:
    """The columns and the mark, under the write lock: two processes that both saw a
    column missing both added it, and the second failed ("duplicate column name")."""
    conn.execute("BEGIN IMMEDIATE")

    def write() -> None:
        add_columns(conn)  # what is still lacking once the lock is held
        if not marked:  # setting it is a write, even to the same value
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")

    commit_or_roll_back(conn, write)
