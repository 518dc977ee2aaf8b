"""One run, as ``iq-promote run`` does it and as ``orchestrator.run`` offers it to Python."""
