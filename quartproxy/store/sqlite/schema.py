"""The SQLite store's tables, the migrations of older files, and the file's identity."""

from __future__ import annotations

import os
import sqlite3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rate_limits (
    key TEXT PRIMARY KEY, tat REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY, origin TEXT NOT NULL, fingerprint_hash TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL NOT NULL, metadata TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS busy (
    session_id TEXT PRIMARY KEY, message_id TEXT NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, message_id TEXT NOT NULL,
    role TEXT NOT NULL, text TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_session ON history (session_id, id);
CREATE INDEX IF NOT EXISTS history_by_time ON history (created_at);
CREATE TABLE IF NOT EXISTS buffers (
    message_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, expires_at REAL NOT NULL,
    last_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS buffers_by_session ON buffers (session_id);
CREATE TABLE IF NOT EXISTS erased_sessions (
    session_id TEXT PRIMARY KEY, erased_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workers (
    worker_id TEXT PRIMARY KEY, expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS turn_owners (
    message_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, worker_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS turn_owners_by_worker ON turn_owners (worker_id);
CREATE TABLE IF NOT EXISTS api_key_uses (
    key_id TEXT PRIMARY KEY, last_used REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS buffer_events (
    message_id TEXT NOT NULL, seq INTEGER NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (message_id, seq)
) WITHOUT ROWID;
"""


def _migrate(conn: sqlite3.Connection) -> None:
    """Inside the schema transaction: columns added since the first release of the schema."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(history)")}
    if "incomplete" not in columns:
        conn.execute("ALTER TABLE history ADD COLUMN incomplete INTEGER NOT NULL DEFAULT 0")
    if "files" not in columns:  # attachments: a JSON list of [name, type, size], or ''
        conn.execute("ALTER TABLE history ADD COLUMN files TEXT NOT NULL DEFAULT ''")


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
