"""A logging handler that keeps each record as a row of a SQLite table, as some teams do."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS log_entry ("
    " created REAL, logger TEXT, level TEXT, message TEXT, formatted TEXT, pid INTEGER)"
)


class SQLiteHandler(logging.Handler):
    """One row per record: the message and the formatted line (one connection per row, so that
    several worker processes can share the file)."""

    def __init__(self, path: str, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        try:
            formatted = self.format(record)
            with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
                db.execute(SCHEMA)
                db.execute(
                    "INSERT INTO log_entry VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.created,
                        record.name,
                        record.levelname,
                        record.getMessage(),
                        formatted,
                        record.process,
                    ),
                )
        except Exception:
            self.handleError(record)
