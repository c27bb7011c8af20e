"""Server-Sent Events, as the notifier streams them (the WHATWG event-stream format).
Pure: lines in, events out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Notification:
    """One Server-Sent Event from the notifier: `id` resumes the stream after it."""

    id: int | None
    event: str
    data: dict[str, Any]


@dataclass
class EventStreamParser:
    """Feed it the stream's lines one by one; it returns an event at each blank line."""

    last_event_id: int | None = None
    retry_ms: int | None = None
    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _id: int | None = None

    def feed(self, line: str) -> Notification | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the notifier's keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and value.isdigit():
            self._id = int(value)
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> Notification | None:
        if self._id is not None:
            self.last_event_id = self._id
        event, data, self._event, self._data, self._id = self._event, self._data, "", [], None
        if not data:
            return None
        text = "\n".join(data)
        try:
            body = json.loads(text)
        except ValueError:
            body = {"text": text}
        return Notification(
            self.last_event_id, event or "message", body if isinstance(body, dict) else {}
        )
