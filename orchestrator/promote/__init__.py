"""Promoting: the plan of chains (``plan``), the scheduler that runs them under the concurrency
bound (``scheduler``, ``events``, ``control``), when to poll (``polling``, ``learned_polling``),
how many at once (``adaptive_concurrency``), and what survives a crash or a signal
(``journal``, ``lock``, ``signals``, ``progress``)."""
