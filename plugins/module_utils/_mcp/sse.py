# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Incremental parser for Server-Sent Events (text/event-stream), standard library only.

Follows the WHATWG HTML "event stream interpretation" rules: lines end in CRLF, LF or a
lone CR (also when a CRLF pair is split across two reads), ``:`` starts a comment, a
field's value loses one leading space, ``data`` lines of one event are joined with LF,
``id`` sets the last event id (ignored when it contains NUL), ``retry`` takes ASCII digits
only, unknown fields are ignored and a blank line dispatches the event. An event whose
data buffer is empty is not dispatched; ``data:`` with an empty value still is (MCP
servers use such "priming" events to hand out an event id).

Private to the corvid.platform collection: not a public API, no compatibility promise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects

DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024


class SSEError(Exception):
    """The stream is not a valid event stream (or exceeds the configured limits)."""


class SSEEvent:
    """One dispatched event."""

    __slots__ = ("data", "event", "id", "retry")

    def __init__(self, event, data, last_event_id, retry):
        self.event = event
        self.data = data
        self.id = last_event_id
        self.retry = retry

    def __repr__(self):
        return "SSEEvent(event=%r, data=%r, id=%r, retry=%r)" % (self.event, self.data, self.id, self.retry)


class SSEParser:
    """Feed bytes with :meth:`feed`; it returns the events completed by them.

    ``comments`` counts comment lines (keep-alives), ``last_event_id`` and ``retry`` keep
    the latest values the stream set.
    """

    def __init__(self, max_event_bytes=DEFAULT_MAX_EVENT_BYTES, last_event_id="", retry=None):
        self.max_event_bytes = max_event_bytes
        # A resumed stream goes on from the id and retry of the stream it resumes.
        self.last_event_id = last_event_id
        self.retry = retry
        self.comments = 0
        self._buffer = b""
        self._pending_cr = False
        self._first_line = True
        self._data = []
        self._data_size = 0
        self._event_type = ""

    def feed(self, chunk):
        """Parse ``chunk`` (bytes) and return a list of completed :class:`SSEEvent`."""
        events = []
        if not chunk:
            return events
        if self._pending_cr:
            # The previous chunk ended in CR: a LF starting this chunk belongs to it.
            self._pending_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        data = self._buffer + chunk
        start = 0
        length = len(data)
        while start < length:
            cr = data.find(b"\r", start)
            lf = data.find(b"\n", start)
            if cr == -1 and lf == -1:
                break
            if cr == -1 or (lf != -1 and lf < cr):
                end, nxt = lf, lf + 1
            else:
                end = cr
                if cr + 1 < length:
                    nxt = cr + 2 if data[cr + 1 : cr + 2] == b"\n" else cr + 1
                else:
                    # CR at the very end: the line is complete, but a LF may follow in the next chunk.
                    nxt = cr + 1
                    self._pending_cr = True
            event = self._line(data[start:end])
            if event is not None:
                events.append(event)
            start = nxt
        self._buffer = data[start:]
        if len(self._buffer) > self.max_event_bytes:
            raise SSEError("event stream line longer than %d bytes" % self.max_event_bytes)
        return events

    def close(self):
        """End of stream: an incomplete event is discarded, as the standard says."""
        self._buffer = b""
        self._data = []
        self._data_size = 0
        self._event_type = ""

    def _line(self, raw):
        line = raw.decode("utf-8", "replace")
        if self._first_line:
            self._first_line = False
            if line.startswith("\ufeff"):
                line = line[1:]
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data_size += len(value) + 1
            if self._data_size > self.max_event_bytes:
                raise SSEError("event larger than %d bytes" % self.max_event_bytes)
            self._data.append(value)
        elif field == "event":
            self._event_type = value
        elif field == "id":
            if "\x00" not in value:
                self.last_event_id = value
        elif field == "retry" and value and all(c in "0123456789" for c in value):
            self.retry = int(value)
        return None

    def _dispatch(self):
        if not self._data:
            self._event_type = ""
            return None
        event = SSEEvent(self._event_type or "message", "\n".join(self._data), self.last_event_id, self.retry)
        self._data = []
        self._data_size = 0
        self._event_type = ""
        return event
