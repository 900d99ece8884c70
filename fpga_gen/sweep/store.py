"""SQLite store of evaluated points: one row per deterministic point key, committed as chunks finish, so an
interrupted sweep keeps its results and a rerun skips them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

__all__ = ["Store"]


class Store:
    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self.db = sqlite3.connect(str(self.path) if self.path else ":memory:")
        self.db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, row TEXT NOT NULL)")
        self.db.commit()

    def done(self, keys) -> set:
        have = set()
        keys = list(keys)
        for k in range(0, len(keys), 500):
            part = keys[k:k + 500]
            q = f"SELECT key FROM results WHERE key IN ({','.join('?' * len(part))})"
            have.update(r[0] for r in self.db.execute(q, part))
        return have

    def put(self, items) -> None:
        self.db.executemany("INSERT OR REPLACE INTO results (key, row) VALUES (?, ?)",
                            [(k, json.dumps(row, sort_keys=True)) for k, row in items])
        self.db.commit()

    def get(self, keys) -> dict:
        out = {}
        keys = list(keys)
        for k in range(0, len(keys), 500):
            part = keys[k:k + 500]
            q = f"SELECT key, row FROM results WHERE key IN ({','.join('?' * len(part))})"
            out.update((key, json.loads(row)) for key, row in self.db.execute(q, part))
        return out

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        self.db.close()
