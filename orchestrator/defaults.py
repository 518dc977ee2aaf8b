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

WEBHOOK_SPREAD = 0.8
"""While IQ's webhook deliveries arrive, backstop polls come this many times further apart,
divided by the square root of the share of deliveries lost: 2.5 times at a tenth lost, but
for the ceiling below."""

WEBHOOK_MAX_STRETCH = 2.3
"""...but at most this many times: the stretch a few lucky deliveries could earn otherwise."""

WEBHOOK_MAX_GAP = 60.0
"""...but never more than this many seconds apart: the most a lost delivery costs a poll."""

WEBHOOK_PRIOR_LOSS = 0.1
WEBHOOK_PRIOR_WEIGHT = 20.0
"""Before the run has seen deliveries, it counts this many completions, a tenth of them
unannounced: tonight's deliveries outweigh them after a few dozen completions."""

WEBHOOK_WINDOW = 200
"""The latest completions the share of deliveries lost is counted over. Should deliveries stop
coming, each completion a poll finds counts: by half of these, polls come about as planned."""

WEBHOOK_SWEPT_STRETCH = 8.0
"""While sweeps of the latest-reports listing find lost deliveries, backstop polls come this
many times further apart than planned: they only back the sweeps up."""

SWEEP_SHARE = 0.25
"""Sweep the latest-reports listing every this share of the typical time from a promotion's
submission to its completion: a lost delivery then costs about an eighth of it."""
SWEEP_FIRST = 1.0
"""Seconds between sweeps before any evaluation's time is known."""
SWEEP_MIN_INTERVAL = 0.25
SWEEP_MAX_INTERVAL = 60.0
"""Sweeps come at least this many seconds apart, and at most."""
SWEEP_ROWS_PER_SECOND = 2000.0
"""Rows of the listing read a second, on average, at most: a server with a large portfolio is
swept less often (10,000 rows: every 5 s)."""
SWEEP_MAX_BYTES = 8 * 1024 * 1024
"""A listing larger than this is not read, and the run sweeps no more: about 13,000 rows of
some 625 bytes, the latest reports of 5,000 applications at two or three stages each."""

WEBHOOK_FRESH_FOR = 600.0
"""Seconds after the last delivery a status confirmed that webhooks still count as arriving."""

WEBHOOK_CLOCK_TOLERANCE = 2.0
"""Seconds by which an evaluation may seem to end before its submission and still be a hint:
IQ's clock and ours differ a little, and a wrong hint costs only one status request."""

HISTORY_CLOCK_TOLERANCE = 2.0
"""Seconds by which a report in the history may seem to be evaluated before its promotion's
POST was sent and still be taken as its report: the server's clock and ours differ a little,
and a report that close to the POST was evaluated against the same policies anyway."""

WEBHOOK_MAX_BODY = 1024 * 1024
"""Bytes a webhook delivery may have; a larger one is answered 413 unread."""

COLLECTOR_THRESHOLDS = (50_000, 20, 20)
"""Python's cyclic garbage collector during a run (``gc.set_threshold``): a collection after
every 50,000 net allocations, not 700. Each promotion's requests, timers and tasks are
allocated and freed by the thousand a second, and at the default pace the collector walked
the whole portfolio's plan and results over and over: 18% of a 20,000-application run's CPU.
Garbage in cycles still goes, a little later."""
