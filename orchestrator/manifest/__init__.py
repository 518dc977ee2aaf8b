"""The manifest: YAML with line numbers (``source``) validated into a frozen model
(``model``, ``repository_results``), every problem reported at its file, line and field
(``problems``)."""
