"""Every default a run has, in one place: the CLI's options, the manifest's fields, the run's
configuration and the client's settings all read them from here, so a default is changed once.
"""

from __future__ import annotations

CONCURRENCY = 20
"""Evaluations outstanding at once, when neither --concurrency nor the manifest says."""

AUTO_CONCURRENCY_START = 8
"""Where ``concurrency: auto`` starts before it learns how much the server takes."""

PROMOTION_TIMEOUT = 1800.0
"""Seconds from an accepted promotion to its final status before it is TIMED_OUT."""

SERVER_DOWN_TIMEOUT = 300.0
"""Seconds the server may stay away before the run gives up on it."""

GRACE = 30.0
"""Seconds a stopped run keeps following the promotions in flight before cancelling them."""

POLL_INITIAL = 1.0
"""Seconds before the first status check, while nothing is known of evaluation times."""

POLL_MAX = 15.0
"""The longest wait between two status checks."""

CONNECT_TIMEOUT = 10.0
"""Seconds to establish a connection (TCP and TLS) to the server."""

READ_TIMEOUT = 60.0
"""Seconds one request may wait for its answer, once connected."""

PROGRESS_INTERVAL = 30.0
"""Seconds between ``run.progress`` events when not on a terminal."""
