"""The persistent response cache: a rerun or resumed run never pays twice for the same answer.

sqlite in WAL mode, one row per request digest (model identity and endpoint, messages with image
content digests, decoding options, choice scoring). Only successful responses are stored. Each
write is its own transaction, so a killed run leaves the cache consistent.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from harness.errors import IadbenchError
from harness.models.base import GenerateResponse
from harness.storage.files import model_json


class CacheError(IadbenchError):
    pass


class ResponseCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.hits = self.writes = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT NULL, created REAL NOT NULL)")
            self._db.execute("SELECT count(*) FROM responses").fetchone()
        except sqlite3.DatabaseError as error:
            raise CacheError(f"{path}: the response cache is damaged ({error}); delete that file to start a fresh cache, or run with --no-cache") from None

    def get(self, key: str) -> GenerateResponse | None:
        try:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as error:
            raise CacheError(f"{self.path}: cannot read the response cache ({error}); delete it or run with --no-cache") from None
        if row is None:
            return None
        try:
            response = GenerateResponse.model_validate_json(row[0])
        except ValueError:  # a damaged row (or one an older iadbench wrote): a miss, replaced by the next answer
            return None
        self.hits += 1
        return response

    def put(self, key: str, response: GenerateResponse) -> None:
        if response.error is not None:
            return  # failures are retried next time, never replayed
        try:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?)", (key, model_json(response), time.time()))
        except sqlite3.DatabaseError as error:
            raise CacheError(f"{self.path}: cannot write the response cache ({error}); delete it or run with --no-cache") from None
        self.writes += 1

    def close(self) -> None:
        self._db.close()
