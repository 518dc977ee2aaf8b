"""The manifest's optional ``webhook:`` section, and the ``HOST:PORT`` a listener binds to.

``run --webhook-listen HOST:PORT`` and ``webhook: {listen: HOST:PORT}`` are read by the same
:func:`listen_address`, so the option and the manifest accept the same words; the option wins.
The secret is never in the manifest: it comes from ``IQ_WEBHOOK_SECRET``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, Field

from orchestrator.manifest.base import ManifestModel


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where a listener binds: a host name or address, and a port (0: any free one)."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def listen_address(text: str) -> ListenAddress:
    """``HOST:PORT``, ``[IPv6]:PORT``; raises ValueError saying what is wrong."""
    value = text.strip()
    host, colon, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"'{value}': write an IPv6 address in brackets, as [::1]:8090")
    if not colon or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"'{value}' is not HOST:PORT (such as 0.0.0.0:8090), port 0-65535")
    return ListenAddress(host, int(port))


def _listen(value: str) -> str:
    listen_address(value)
    return value.strip()


class WebhookSection(ManifestModel):
    """Listen for IQ Server's Application Evaluation webhook, to learn of finished
    evaluations without waiting for a poll (docs/operations.md, "IQ's webhook")."""

    listen: Annotated[str, AfterValidator(_listen)] = Field(examples=["0.0.0.0:8090"])
    """``HOST:PORT`` to listen on; IQ Server must reach it. ``--webhook-listen`` wins."""
    sweep: bool = True
    """Read IQ's latest-reports listing now and then to find the evaluations whose delivery
    was lost; false: polls alone find them (``--no-webhook-sweep`` says the same)."""

    @property
    def address(self) -> ListenAddress:
        return listen_address(self.listen)
