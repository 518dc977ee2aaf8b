"""Learned polling and longest-first ordering: pure strategies, no network needed.

The benchmark tunes how the schedule places its polls (the prior around an expected time, how
much each poll should save, ``warmup``); these tests check what must hold for any sensible
choice, and name the tunable constants only symbolically.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import statistics
from collections.abc import Iterator, Mapping, Sequence
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.manifest.model import Transition
from orchestrator.promote import learned_polling
from orchestrator.promote.learned_polling import (
    PRIOR_SPREAD,
    LearnedSchedule,
    _Sample,
    longest_first,
)
from orchestrator.promote.plan import ApplicationWork, Chain, Step, Target

TAKE = 200
"""Offsets drawn from an endless iterator per check."""
JITTER = 0.2
"""Tolerance for the random spread of growing intervals (the schedule uses less)."""


def take(offsets: Iterator[float], count: int = TAKE) -> list[float]:
    taken = list(itertools.islice(offsets, count))
    assert len(taken) == count, "a poll strategy never runs out of offsets"
    return taken


def intervals(offsets: Sequence[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise([0.0, *offsets])]


def learned(
    history: Mapping[str, Sequence[float]] | None = None, *, seed: int = 1, **fields: float
) -> LearnedSchedule:
    schedule = LearnedSchedule(history=history or {}, rng=random.Random(seed))
    for name, value in fields.items():
        setattr(schedule, name, value)
    return schedule


def spaced(offsets: Sequence[float], gap: float) -> bool:
    """Whether consecutive offsets are at least ``gap`` apart (up to float rounding)."""
    return all(b - a >= gap - 1e-9 * max(1.0, b) for a, b in itertools.pairwise(offsets))


def assert_growing(schedule: LearnedSchedule, offsets: Sequence[float]) -> None:
    """Each poll waits about ``growth`` times longer since submission than the one before,
    but never much more than ``cap`` after it."""
    for before, after in itertools.pairwise(offsets):
        nominal = min(before * (schedule.growth - 1), schedule.cap)
        assert after - before >= min(nominal * (1 - JITTER), schedule.min_gap) - 1e-9
        assert after - before <= max(nominal * (1 + JITTER), schedule.min_gap) + 1e-9


def observe_spread(schedule: LearnedSchedule, times: Sequence[float], seed: int = 5) -> None:
    """One evaluation of each of ``times`` (seconds), in a shuffled order."""
    shuffled = list(times)
    random.Random(seed).shuffle(shuffled)
    for n, time in enumerate(shuffled):
        schedule.observe(f"seen-{n}", time - 0.05, time + 0.05)


# --- LearnedSchedule: nothing known yet ----------------------------------------------------


def test_before_anything_is_known_polls_start_at_initial_and_grow_up_to_the_cap() -> None:
    schedule = learned(initial=0.5, cap=4.0)
    offsets = take(schedule.offsets("app"))
    assert offsets[0] == pytest.approx(0.5)
    assert_growing(schedule, offsets)
    assert max(intervals(offsets)) <= 4.0 * (1 + JITTER)
    assert intervals(offsets)[-1] >= 4.0 * (1 - JITTER), "intervals reach the cap"


def test_before_warmup_observations_do_not_move_the_polls() -> None:
    cold = take(learned(seed=3).offsets("app"))
    schedule = learned(seed=3)
    observe_spread(schedule, [3.0 + n for n in range(schedule.warmup - 1)])
    assert take(schedule.offsets("app")) == cold


# --- LearnedSchedule: learning from the run ------------------------------------------------


def test_after_warmup_polls_are_placed_by_the_observed_times() -> None:
    schedule = learned(initial=0.5)
    observed = [5.0 + n for n in range(max(schedule.warmup, 1) * 8)]  # 5 s .. 44 s or more
    observe_spread(schedule, observed)
    offsets = take(schedule.offsets("new-app"))
    assert min(observed) <= offsets[0] <= max(observed), "no poll before the fastest seen"
    within = [o for o in offsets if o <= max(observed)]
    assert len(within) >= 3, "several polls spread over the observed times"
    assert spaced(offsets, schedule.min_gap)


def test_past_the_slowest_evaluation_seen_intervals_grow_up_to_the_cap() -> None:
    schedule = learned(cap=3.0)
    observed = [1.0 + n * 0.5 for n in range(max(schedule.warmup, 1) * 4)]
    observe_spread(schedule, observed)
    offsets = take(schedule.offsets("app"))
    beyond = [o for o in offsets if o >= max(observed)]
    assert len(beyond) > 100
    assert_growing(schedule, beyond)
    assert intervals(beyond)[-1] >= 3.0 * (1 - JITTER)


def test_learning_happens_while_a_promotion_is_followed() -> None:
    """Each offset is chosen after the previous poll: what was observed in between counts."""
    schedule = learned(initial=0.5, cap=60.0)
    offsets = schedule.offsets("late-app")
    first = next(offsets)
    assert first == pytest.approx(0.5)
    observe_spread(schedule, [20.0 + n for n in range(max(schedule.warmup, 1) * 4)])
    assert next(offsets) >= 20.0, "the next poll waits for the times now known"


# --- LearnedSchedule: history --------------------------------------------------------------


def test_with_history_the_prior_gathers_polls_around_the_expected_time() -> None:
    """Before tonight's times are known, the prior places the polls: the first just before
    the expected time, the next soon after it."""
    schedule = learned({"slow": [10.0, 8.0, 12.0], "quick": [0.4]})
    assert schedule.expected("slow") == 10.0
    near = math.exp(3 * PRIOR_SPREAD)
    slow = take(schedule.offsets("slow"))
    assert 10.0 / near <= slow[0] <= 10.0
    assert any(10.0 < o <= 10.0 * near for o in slow), "and another soon after it"
    quick = take(schedule.offsets("quick"))
    assert 0.4 / near <= quick[0] <= 0.4 * near
    assert spaced(quick, schedule.min_gap)


def test_a_poll_is_worth_more_on_a_long_evaluation_than_on_a_short_one() -> None:
    """Waiting is counted in seconds: the same spread around the expected time is polled
    more closely on a long evaluation, where a late poll holds its slot longer."""
    schedule = learned({"long": [20.0], "short": [1.0]})
    near = math.exp(3 * PRIOR_SPREAD)

    def polls_near(public_id: str, expected: float) -> int:
        return sum(1 for o in take(schedule.offsets(public_id)) if o <= expected * near)

    assert polls_near("long", 20.0) > polls_near("short", 1.0) >= 1


@pytest.mark.parametrize(("history", "observed"), [(10.0, 0.5), (0.5, 10.0)])
def test_misleading_history_is_corrected_by_what_is_observed(
    history: float, observed: float
) -> None:
    schedule = learned({"app": [history]})
    before = take(schedule.offsets("app"))
    assert history / 2 <= before[0] <= history
    schedule.observe("app", observed * 0.9, observed * 1.1)
    assert schedule.expected("app") == pytest.approx(observed)
    after = take(schedule.offsets("app"))
    assert observed / 2 <= after[0] <= observed * 2, "polls follow what was observed"


def test_empty_or_unusable_history_is_ignored() -> None:
    cold = take(learned(seed=11).offsets("app"))
    schedule = learned({"app": [], "zero": [0.0, -1.0], "other": [3.0]}, seed=11)
    assert schedule.expected("app") is None
    assert schedule.expected("zero") is None
    assert schedule.expected("other") == 3.0
    assert take(schedule.offsets("app")) == cold


def test_history_trusts_the_newest_time_when_the_application_changed() -> None:
    # Times are newest first: one far from the others says the application changed.
    schedule = learned({"steady": [10.0, 9.0, 11.0, 10.0], "changed": [2.0, 10.0, 10.0, 10.0]})
    assert schedule.expected("steady") == 10.0
    assert schedule.expected("changed") == 2.0


@pytest.mark.parametrize("field", [{"initial": 0.0}, {"cap": 0.0}, {"growth": 1.0}])
def test_a_schedule_that_cannot_grow_is_refused(field: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="polling needs"):
        LearnedSchedule(**field)  # type: ignore[arg-type]


# --- LearnedSchedule: properties -----------------------------------------------------------

public_ids = st.sampled_from(["a", "b", "c", "d"])
histories = st.dictionaries(
    public_ids, st.lists(st.floats(min_value=-1.0, max_value=1e4), max_size=5), max_size=3
)
observations = st.lists(
    st.tuples(
        public_ids,
        st.floats(min_value=0.0, max_value=1e4),
        st.floats(min_value=0.001, max_value=10.0),
    ),
    max_size=30,
)
knobs = st.fixed_dictionaries(
    {
        "warmup": st.integers(min_value=0, max_value=10),
        "min_gap": st.floats(min_value=0.001, max_value=1.0),
        "initial": st.floats(min_value=0.01, max_value=10.0),
        "growth": st.floats(min_value=1.01, max_value=3.0),
        "cap": st.floats(min_value=0.01, max_value=30.0),
    }
)


@settings(max_examples=150, deadline=None)
@given(
    history=histories,
    seen=observations,
    public_id=public_ids,
    knob=knobs,
    seed=st.integers(),
)
def test_offsets_are_positive_strictly_increasing_and_unbounded(
    history: dict[str, list[float]],
    seen: list[tuple[str, float, float]],
    public_id: str,
    knob: dict[str, float],
    seed: int,
) -> None:
    schedule = learned(history, seed=seed, **knob)
    ratios: list[float] = []
    for pid, lower, spread in seen:
        expected = schedule.expected(pid)
        if expected is not None:
            ratios.append((lower + spread) / expected)
        schedule.observe(pid, lower, lower + spread)
    offsets = take(schedule.offsets(public_id))
    steps = intervals(offsets)
    floor = min(schedule.min_gap, schedule.cap)
    assert offsets[0] > 0
    assert spaced(offsets, floor)
    assert offsets[-1] >= TAKE * floor * (1 - 1e-9), "they grow without bound"
    # Past everything observed (a bracket's top) or expected, intervals never exceed the cap.
    expected = schedule.expected(public_id) or 0.0
    horizon = max(
        max((lower + spread for _, lower, spread in seen), default=0.0),
        expected * math.exp(3 * PRIOR_SPREAD),
        expected * max(ratios, default=0.0),
    )
    late = [step for at, step in zip(offsets, steps, strict=True) if at - step > horizon]
    assert all(step <= max(schedule.cap * (1 + JITTER), schedule.min_gap) for step in late)


@settings(max_examples=100, deadline=None)
@given(
    history=histories,
    interleaved=st.lists(st.one_of(st.none(), observations.map(tuple)), max_size=40),
    public_id=public_ids,
    knob=knobs,
    seed=st.integers(),
)
def test_observations_between_polls_never_send_a_poll_back_in_time(
    history: dict[str, list[float]],
    interleaved: list[tuple[tuple[str, float, float], ...] | None],
    public_id: str,
    knob: dict[str, float],
    seed: int,
) -> None:
    schedule = learned(history, seed=seed, **knob)
    offsets = schedule.offsets(public_id)
    drawn = [next(offsets)]
    for batch in interleaved:
        for pid, lower, spread in batch or ():
            schedule.observe(pid, lower, lower + spread)
        drawn.append(next(offsets))
    assert drawn[0] > 0
    assert spaced(drawn, min(schedule.min_gap, schedule.cap))


@given(history=histories, batch=observations, public_id=public_ids, seed=st.integers())
def test_what_an_evaluation_is_estimated_to_have_taken_lies_in_its_bracket(
    history: dict[str, list[float]],
    batch: list[tuple[str, float, float]],
    public_id: str,
    seed: int,
) -> None:
    schedule = learned(history, seed=seed)
    for pid, lower, spread in [*batch, (public_id, 1.0, 2.0)]:
        estimate = schedule.observe(pid, lower, lower + spread)
        assert lower <= estimate <= lower + spread


def test_an_evaluation_done_by_the_first_poll_is_placed_near_it_not_halfway() -> None:
    """Most evaluations end close to the first poll when it is placed below most of them;
    the midpoint of (0, first poll] would halve this one and mislead the next night."""
    schedule = learned()
    observe_spread(schedule, [1.5 + n / 20 for n in range(40)])
    assert schedule.observe("quick", 0.0, 1.2) > 0.9


def test_estimates_fall_back_to_the_midpoint_before_enough_is_seen() -> None:
    schedule = learned()
    assert schedule.observe("first", 0.0, 1.2) == pytest.approx(0.6)


def test_with_history_estimates_follow_tonights_ratios() -> None:
    """Tonight runs 20% over history everywhere: a wide bracket around that is resolved by it,
    once tonight's evaluations far outweigh the prior."""
    history = {f"app-{n}": [2.0] for n in range(110)}
    schedule = learned(history)
    for n in range(100):
        schedule.observe(f"app-{n}", 2.38, 2.42)
    assert schedule.observe("app-25", 1.6, 3.0) == pytest.approx(2.4, abs=0.1)


def test_a_schedule_without_warmup_polls_before_anything_is_observed() -> None:
    schedule = learned(warmup=0, initial=0.5)
    assert take(schedule.offsets("app"))[0] == pytest.approx(0.5)


# --- longest_first -------------------------------------------------------------------------

TRANSITION = Transition(source_stage="build", target_stage="build")


def work(public_id: str, steps: int, chains: int = 1) -> ApplicationWork:
    made = tuple(
        Chain(tuple(Step(0, c, i, TRANSITION) for i in range(steps))) for c in range(chains)
    )
    return ApplicationWork(Target(public_id, f"id-{public_id}", None), made)


def test_longest_first_orders_by_expected_time_times_steps() -> None:
    items = [work("short", 1), work("many-steps", 4), work("slow", 1), work("unknown", 1)]
    schedule = learned({"short": [1.0], "many-steps": [1.5], "slow": [5.0]})
    ordered = [w.target.public_id for w in longest_first(items, schedule)]
    # many-steps: 6.0, slow: 5.0, unknown: the median 1.5, short: 1.0
    assert ordered == ["many-steps", "slow", "unknown", "short"]


def test_longest_first_counts_the_steps_of_every_chain() -> None:
    items = [work("one-chain", 2), work("two-chains", 2, chains=2)]
    schedule = learned({"one-chain": [1.0], "two-chains": [0.6]})
    assert [w.target.public_id for w in longest_first(items, schedule)] == [
        "two-chains",
        "one-chain",
    ]


def test_longest_first_keeps_the_order_when_nothing_is_known() -> None:
    items = [work(f"app-{n}", 1 + n % 3) for n in range(10)]
    assert longest_first(items, learned({"elsewhere": [2.0]})) == items


@settings(max_examples=150, deadline=None)
@given(
    apps=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=4),
            st.integers(min_value=1, max_value=2),
            st.one_of(st.none(), st.floats(min_value=0.001, max_value=100.0)),
        ),
        max_size=15,
    )
)
def test_longest_first_is_a_stable_sort_by_expected_total(
    apps: list[tuple[int, int, float | None]],
) -> None:
    items = [work(f"app-{n}", steps, chains) for n, (steps, chains, _) in enumerate(apps)]
    history = {f"app-{n}": [t] for n, (_, _, t) in enumerate(apps) if t is not None}
    ordered = longest_first(items, learned(history))
    assert len(ordered) == len(items)
    assert sorted(map(id, ordered)) == sorted(map(id, items)), "every item exactly once"
    known = [t for _, _, t in apps if t is not None]
    if not known:
        assert ordered == items
        return
    typical = statistics.median(known)
    index = {id(w): n for n, w in enumerate(items)}

    def total(item: ApplicationWork) -> float:
        _, _, time = apps[index[id(item)]]
        return (typical if time is None else time) * sum(1 for _ in item.steps)

    for a, b in itertools.pairwise(ordered):
        assert total(a) >= total(b)
        if total(a) == total(b):
            assert index[id(a)] < index[id(b)], "ties keep their original order"


def test_past_the_median_no_wait_between_polls_exceeds_its_share_of_it() -> None:
    schedule = learned(tail_share=0.5)
    seen = [1.0 + n / 10 for n in range(schedule.warmup + 10)]
    observe_spread(schedule, seen)
    median = statistics.median(seen)
    offsets = take(schedule.offsets("slow-one"))
    late = intervals([o for o in offsets if median <= o <= schedule.tail_from * median])[1:]
    assert max(late) <= schedule.tail_share * median + 0.05
    assert max(late) > schedule.tail_share * median / 2, "the share is what bounds the tail"


def test_far_past_the_median_the_longest_wait_grows_with_the_time_run() -> None:
    schedule = learned(tail_share=0.5, cap=1000.0)
    seen = [1.0 + n / 10 for n in range(schedule.warmup + 10)]
    observe_spread(schedule, seen)
    median = statistics.median(seen)
    offsets = take(schedule.offsets("very-slow-one"))
    for before, after in itertools.pairwise(offsets):
        if before >= schedule.tail_from * median:
            share = schedule.tail_share * before / schedule.tail_from
            assert after - before <= share * (1 + 1e-9) + 1e-9
    far = [(a, b) for a, b in itertools.pairwise(offsets) if a >= 4 * schedule.tail_from * median]
    assert far, "the offsets reach far into the tail"
    assert all(b - a > 2 * schedule.tail_share * median for a, b in far), "not at the median's pace"


def test_with_history_a_long_evaluation_is_not_polled_early_for_the_tail_share() -> None:
    """The share bounds waits past an evaluation's own expected time, not before it: an
    application ten times slower than the run's median is first asked near its own time."""
    history = {"slow-one": [30.0], **{f"app-{n}": [3.0] for n in range(30)}}
    schedule = learned(history, cap=100.0)
    for n in range(30):
        schedule.observe(f"app-{n}", 2.9, 3.1)
    first = next(schedule.offsets("slow-one"))
    assert first > 0.5 * 30.0


def whole_window_next_poll(seen: list[float], after: float, budget: float) -> float | None:
    """The polling rule as first written, with sums over the whole window: the reference."""
    below = bisect.bisect_right(seen, after)
    above = len(seen) - below
    if above == 0:
        return None
    sums = [0.0, *itertools.accumulate(seen)]
    target = budget * above
    low, high = below + 1, len(seen)
    while low < high:
        middle = (low + high) // 2
        if (middle - below) * seen[middle] - (sums[middle] - sums[below]) >= target:
            high = middle
        else:
            low = middle + 1
    return (target + sums[low] - sums[below]) / (low - below)


@pytest.mark.parametrize("seed", range(40))
def test_sums_kept_by_block_plan_the_polls_sums_over_the_whole_window_would(seed: int) -> None:
    """After each observation (the window full or not), for blocks of any size (small ones
    make a few observations span many), which keep the window in order and their sizes in
    bounds. Times in eighths of a second: floats hold their sums exactly in any order, so
    both rules agree to the bit."""
    rng = random.Random(seed)
    size, block = rng.randint(1, 100), rng.randint(1, 40)
    sample = _Sample(size)
    times: list[float] = []
    with mock.patch.object(learned_polling, "_BLOCK", block):
        for _ in range(rng.randint(1, 300)):
            time = rng.randint(1, 4000) / 8
            after, budget = rng.randint(0, 4000) / 8, rng.randint(1, 1600) / 16
            sample.add(time)
            times.append(time)
            planned = sample.next_poll(after, budget)
            assert planned == whole_window_next_poll(sorted(times[-size:]), after, budget)
            blocks = sample._blocks
            assert [t for b in blocks for t in b] == sorted(times[-size:])
            assert all(0 < len(b) <= 2 * block for b in blocks)
            assert len(blocks) == 1 or all(len(b) >= block // 2 for b in blocks)
    assert len(sample) == min(len(times), size)
