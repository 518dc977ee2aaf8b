"""From what the client and the server saw to the figures the issue asks for."""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields

from benchmarks.clients import ClientRun
from benchmarks.simulator import ServerView
from benchmarks.workloads import HELD_OUT_SEEDS, TUNING_SEEDS, Workload


@dataclass(frozen=True, slots=True)
class Target:
    """What a variant aims at on the standard workload (the only one targets were set for),
    on the held-out seeds' median: at
    most ``ratio`` times its ``against`` (``lower_bound`` or ``zero_delay``), at most
    ``requests`` a promotion."""

    ratio: float
    against: str
    requests: float


TARGETS = {
    "night-1": Target(1.25, "lower_bound", 5.0),
    "night-2": Target(1.10, "lower_bound", 4.0),
    "webhook-10": Target(1.05, "zero_delay", 2.5),
}

LABELS = {
    "night-1": "iq-promote, first night (learned polling)",
    "night-2": "iq-promote, second night (learned polling with history)",
    "webhook-0": "iq-promote, first night, webhook (none lost)",
    "webhook-10": "iq-promote, first night, webhook (10% lost)",
    "fixed-0.5s": "script: semaphore, poll every 0.5 s",
    "fixed-2s": "script: semaphore, poll every 2 s",
}


@dataclass(frozen=True, slots=True)
class Measurement:
    """One variant, one run, on one seed's portfolio.

    ``lower_bound`` is what no client can beat on this server: the evaluation time the run
    cost, spread over every worker, or its longest evaluation if that is longer (each
    application here has one transition, so a chain is one evaluation). ``zero_delay`` is
    what a client that learned of every completion at once would reach in the run's own
    order: its own time to the first submission (``lead``), then the server's evaluations,
    in the order they were submitted, list-scheduled on as many machines as the smaller of
    the bound and the server's workers.
    """

    variant: str
    seed: int
    promotions: int
    completed: int
    evaluations: int
    makespan: float
    lower_bound: float
    ratio: float
    zero_delay: float
    zero_delay_ratio: float
    lead: float
    requests_per_promotion: float
    polls_per_promotion: float
    detection_delay_median: float
    detection_delay_p95: float
    detected_by_webhook: float
    """The share of completions a webhook delivery announced."""
    detected_by_listing: float
    """The share a sweep of the latest-reports listing found (their delivery lost)."""
    webhooks_lost: int
    cpu_seconds: float
    cpu_ms_per_promotion: float
    peak_rss_mib: float
    max_running: int
    exit_code: int

    def as_json(self) -> dict[str, object]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class Setting:
    """Where a variant ran: the variant, the seed, the workload's bound and workers."""

    variant: str
    seed: int
    workload: Workload


def measure(
    setting: Setting, promotions: int, client: ClientRun, server: ServerView
) -> Measurement:
    workload = setting.workload
    ordered = sorted(server.evaluations, key=lambda e: e.enqueued_wall)
    seconds = [e.seconds for e in ordered]
    lower_bound = max(sum(seconds) / workload.workers, max(seconds, default=0.0))
    lead = max(0.0, ordered[0].enqueued_wall - client.started_wall) if ordered else 0.0
    machines = min(workload.workers, workload.concurrency)
    zero_delay = lead + zero_delay_makespan(seconds, machines)
    finished = {e.status_id: e.finished_wall for e in server.evaluations}
    delays = sorted(
        max(0.0, seen - finished[status_id])
        for status_id, seen in client.detected.items()
        if status_id in finished
    )
    polls = server.requests.get("promotion-status", {}).get("GET", 0)
    completed = len(client.detected)
    return Measurement(
        variant=setting.variant,
        seed=setting.seed,
        promotions=promotions,
        completed=completed,
        evaluations=len(server.evaluations),
        makespan=client.makespan,
        lower_bound=lower_bound,
        ratio=_ratio(client.makespan, lower_bound),
        zero_delay=zero_delay,
        zero_delay_ratio=_ratio(client.makespan, zero_delay),
        lead=lead,
        requests_per_promotion=server.total_requests / promotions,
        polls_per_promotion=polls / promotions,
        detection_delay_median=statistics.median(delays) if delays else float("nan"),
        detection_delay_p95=_quantile(delays, 0.95),
        detected_by_webhook=client.detected_by.get("webhook", 0) / max(1, completed),
        detected_by_listing=client.detected_by.get("listing", 0) / max(1, completed),
        webhooks_lost=server.webhooks_lost,
        cpu_seconds=client.cpu_seconds,
        cpu_ms_per_promotion=1000 * client.cpu_seconds / promotions,
        peak_rss_mib=client.peak_rss_mib,
        max_running=server.max_running,
        exit_code=client.exit_code,
    )


def zero_delay_makespan(seconds: Iterable[float], machines: int) -> float:
    """List scheduling with no delay: each evaluation, in the order given, starts the moment a
    machine frees (a slot of the client's bound, or a server worker if there are fewer).
    What a client that learned of every completion at once, and sent the next at once,
    would reach in that order."""
    free = [0.0] * machines
    for duration in seconds:
        heapq.heappush(free, heapq.heappop(free) + duration)
    return max(free)


def _ratio(value: float, bound: float) -> float:
    return value / bound if bound else float("nan")


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


NUMBERS = tuple(f.name for f in fields(Measurement) if f.type in ("float", float))


@dataclass(frozen=True, slots=True)
class Results:
    """Every run of one workload; each seed's figure (the median of its runs) and the median
    over the seeds, which is what the README quotes and the targets are judged on."""

    workload: Workload
    date: str
    machine: str
    command: str
    runs: list[Measurement]

    def per_seed(self, variant: str, seed: int) -> dict[str, float]:
        return _medians([m for m in self.runs if m.variant == variant and m.seed == seed])

    def medians(self, variant: str) -> dict[str, float]:
        """The median over the seeds of each seed's figure."""
        seeds = [self.per_seed(variant, s) for s in self.seeds if self._ran(variant, s)]
        return {n: round(statistics.median(s[n] for s in seeds), 4) for n in NUMBERS}

    @property
    def seeds(self) -> list[int]:
        return list(dict.fromkeys(m.seed for m in self.runs))

    @property
    def repeats(self) -> int:
        return max(1, len(self.runs) // max(1, len(self.seeds) * len(self.workload.variants)))

    def _ran(self, variant: str, seed: int) -> bool:
        return any(m.variant == variant and m.seed == seed for m in self.runs)

    def verdicts(self) -> list[tuple[str, Target, dict[str, float], bool]]:
        """Each target of a variant this workload ran: what was measured, and whether met."""
        found = []
        for variant, target in TARGETS.items():
            if self.workload.name != "standard" or variant not in self.workload.variants:
                continue
            m = self.medians(variant)
            ratio = m["ratio" if target.against == "lower_bound" else "zero_delay_ratio"]
            met = ratio <= target.ratio and m["requests_per_promotion"] <= target.requests
            found.append((variant, target, m, met))
        return found

    def to_json(self) -> dict[str, object]:
        return {
            "workload": self.workload.name,
            "description": self.workload.description,
            "date": self.date,
            "machine": self.machine,
            "command": self.command,
            "seeds": {
                "measured": self.seeds,
                "heldOut": [s for s in self.seeds if s in HELD_OUT_SEEDS],
                "tuning": list(TUNING_SEEDS),
            },
            "targets": {
                variant: {
                    "ratio": target.ratio,
                    "against": target.against,
                    "requestsPerPromotion": target.requests,
                    "met": met,
                }
                for variant, target, _, met in self.verdicts()
            },
            "medians": {v: self.medians(v) for v in self.workload.variants},
            "perSeed": {
                v: {str(s): self.per_seed(v, s) for s in self.seeds if self._ran(v, s)}
                for v in self.workload.variants
            },
            "runs": [m.as_json() for m in self.runs],
        }

    def markdown(self) -> str:
        held = [s for s in self.seeds if s in HELD_OUT_SEEDS]
        tuned = [s for s in self.seeds if s in TUNING_SEEDS]
        rows = [
            f"Workload `{self.workload.name}`: {self.workload.description}.",
            "",
            f"{self.machine}; {self.date}. Command: `{self.command}`.",
            "",
            f"Seeds measured: {_seeds(self.seeds)}, {self.repeats} run(s) of each variant per "
            f"seed. Held out (never tuned on): {_seeds(held) or 'none'}; tuning seeds among "
            f"them: {_seeds(tuned) or 'none'} (the constants were tuned on "
            f"{_seeds(list(TUNING_SEEDS))}). Medians over the seeds of each seed's figure:",
            "",
            "| variant | makespan / lower bound | makespan / zero-delay | requests per promotion "
            "| polls per promotion | detection delay median / p95 (s) "
            "| detected by webhook / listing | client CPU per promotion (ms) | peak RSS (MiB) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for variant in self.workload.variants:
            m = self.medians(variant)
            rows.append(
                f"| {LABELS.get(variant, variant)} | {m['ratio']:.3f} "
                f"| {m['zero_delay_ratio']:.3f} "
                f"| {m['requests_per_promotion']:.2f} | {m['polls_per_promotion']:.2f} "
                f"| {m['detection_delay_median']:.3f} / {m['detection_delay_p95']:.3f} "
                f"| {m['detected_by_webhook']:.0%} / {m['detected_by_listing']:.0%} "
                f"| {m['cpu_ms_per_promotion']:.2f} | {m['peak_rss_mib']:.0f} |"
            )
        if verdicts := self.verdicts():
            rows += ["", "| target | measured (median) | |", "|---|---|---|"]
            for variant, target, m, met in verdicts:
                against = "lower bound" if target.against == "lower_bound" else "zero-delay"
                ratio = m["ratio" if target.against == "lower_bound" else "zero_delay_ratio"]
                rows.append(
                    f"| {LABELS[variant]}: at most {target.ratio:.2f} x {against}, "
                    f"{target.requests:.1f} requests | {ratio:.3f}, "
                    f"{m['requests_per_promotion']:.2f} requests | "
                    f"{'met' if met else '**not met**'} |"
                )
        rows += ["", *self._per_seed_table()]
        return "\n".join(rows) + "\n"

    def _per_seed_table(self) -> list[str]:
        """Each seed's figure: makespan over the lower bound (over the zero-delay makespan for
        the webhook), at requests per promotion."""
        variants = self.workload.variants
        rows = [
            "Each seed (makespan / lower bound, or / zero-delay for the webhook, at requests "
            "per promotion):",
            "",
            "| seed | " + " | ".join(variants) + " |",
            "|---" * (len(variants) + 1) + "|",
        ]
        for seed in self.seeds:
            cells = []
            for variant in variants:
                if not self._ran(variant, seed):
                    cells.append("")
                    continue
                m = self.per_seed(variant, seed)
                key = "zero_delay_ratio" if variant.startswith("webhook") else "ratio"
                cells.append(f"{m[key]:.3f} at {m['requests_per_promotion']:.2f}")
            rows.append(f"| {seed} | " + " | ".join(cells) + " |")
        return rows


def _medians(runs: Sequence[Measurement]) -> dict[str, float]:
    return {n: round(statistics.median(getattr(m, n) for m in runs), 4) for n in NUMBERS}


def _seeds(seeds: Sequence[int]) -> str:
    """``7, 1-30``: runs of consecutive seeds joined."""
    spans: list[list[int]] = []
    for seed in seeds:
        if spans and seed == spans[-1][-1] + 1:
            spans[-1].append(seed)
        else:
            spans.append([seed])
    return ", ".join(f"{s[0]}-{s[-1]}" if len(s) > 2 else ", ".join(map(str, s)) for s in spans)
