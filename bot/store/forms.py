"""Forms a member has open: what each was opened on, kept until it is submitted or expires."""

from __future__ import annotations

import json
from typing import Any

from bot.store import Database

# Discord closes a form the member leaves open; a day is far past any real one.
FORM_LIFETIME_SECONDS = 24 * 3600


class FormStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(self, form_id: str, body: dict[str, Any], *, now: float) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM open_forms WHERE created_at < ?", (now - FORM_LIFETIME_SECONDS,))
            await conn.execute(
                "INSERT INTO open_forms (id, created_at, body_json) VALUES (?, ?, ?)", (form_id, now, json.dumps(body))
            )

    async def take(self, form_id: str, *, now: float) -> dict[str, Any] | None:
        """The form's body, once: a submitted form is gone (Discord closes it on submit)."""
        async with self.db.transaction() as conn:
            async with conn.execute(
                "SELECT body_json FROM open_forms WHERE id = ? AND created_at >= ?",
                (form_id, now - FORM_LIFETIME_SECONDS),
            ) as cur:
                row = await cur.fetchone()
            await conn.execute("DELETE FROM open_forms WHERE id = ?", (form_id,))
        return json.loads(row[0]) if row else None
