"""How long the bus's HTTP parties keep an idle connection open: one pair for every
server and client of the bus, so that the two ends agree.

The server waits longer than any client of the bus, so the client is always the one to
close: with equal timeouts a request sent as the server closes is lost ("Server
disconnected without sending a response"). A client keeps its connection long enough
to outlast the gaps of an agency that sends a referral every few seconds: httpx's own
default (5 s) makes such an agency pay a TLS handshake (two round trips and a signature
on each side) on nearly every request.
"""

from __future__ import annotations

#: How long a server of the bus keeps an idle connection, in seconds.
SERVER_IDLE_S = 75.0

#: How long a client of the bus (the client library, the cross-border gateway, the
#: bench's loader) keeps an idle connection, in seconds: under `SERVER_IDLE_S`.
CLIENT_IDLE_S = 60.0

#: A node writes an empty line on a log stream (`GET /v1/log/stream`) this often while
#: nothing is recorded, so that its readers and any proxy see the connection alive.
LOG_STREAM_KEEP_ALIVE_S = 15.0

#: How long a reader of a log stream waits for a line before it takes the stream for
#: dead and opens another: three keep-alives missed.
LOG_STREAM_SILENCE_S = 3 * LOG_STREAM_KEEP_ALIVE_S
