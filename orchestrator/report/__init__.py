"""What a run produced: each promotion's result (``results``), the run report (``run_report``),
the comparison with an earlier run (``baseline``), violations by threat band
(``violations``), the ``--fail-on`` gate (``gate``) and the firewall section (``firewall``)."""
