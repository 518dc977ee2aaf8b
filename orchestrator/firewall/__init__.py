"""The firewall's Repository Results: every page of a search, walked on either endpoint
generation (``pages``), the search built from what a person types (``query``), the owners that
have results (``inventory``), rows written out as NDJSON, JSON or CSV (``writers``), and the
summary a run's report carries (``summary``)."""
