"""The delivery fairness rule: per-host and per-account limits, and the per-host cooldown."""

from __future__ import annotations

from service.callbacks.fairness import BUSY_DEFER_SECONDS, Fairness, host_of


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fairness(clock: Clock) -> Fairness:
    return Fairness(
        host_limit=2, account_limit=3, cooldown_initial=1.0, cooldown_max=8.0, slots=4, clock=clock
    )


def test_hosts_are_told_apart_by_scheme_host_and_port() -> None:
    assert host_of("http://Example.test/a?x=1") == host_of("http://example.test/b")
    assert host_of("http://example.test:81/") != host_of("http://example.test/")
    assert host_of("https://example.test/") != host_of("http://example.test/")


def test_past_its_share_a_host_or_account_leaves_a_quarter_of_the_slots_free() -> None:
    clock = Clock()
    fair = fairness(clock)  # 4 slots: past a limit, 1 stays free for the others
    for _ in range(3):
        assert fair.wait_seconds("h1", "A") == 0  # 2 within the host's share, 1 past it
        fair.started("h1", "A")
    assert fair.wait_seconds("h1", "A") == BUSY_DEFER_SECONDS  # the last slot is kept
    assert fair.wait_seconds("h1", "B") == BUSY_DEFER_SECONDS  # the host is past its share
    assert fair.wait_seconds("h2", "A") == BUSY_DEFER_SECONDS  # so is the account
    assert fair.wait_seconds("h2", "B") == 0  # the slot kept is another's
    fair.started("h2", "B")
    fair.finished("h1", "A", answered=True)
    fair.finished("h1", "A", answered=True)
    assert fair.wait_seconds("h1", "A") == 0  # back within its share


def test_a_silent_host_cools_down_longer_each_time_until_it_answers() -> None:
    clock = Clock()
    fair = fairness(clock)
    waits = []
    for _ in range(5):
        fair.started("h", "A")
        fair.finished("h", "A", answered=False)
        waits.append(fair.wait_seconds("h", "A"))
        clock.now += waits[-1]
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert fair.wait_seconds("other", "A") == 0  # only that host
    fair.started("h", "A")
    fair.finished("h", "A", answered=True)
    assert fair.wait_seconds("h", "A") == 0
    assert fair.cooling() == 0
