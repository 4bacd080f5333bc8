"""Per-address stream shares: busy clients get their share, a short wait past it and a 429,
clients whose streams stall are bounded much sooner and refused as the service's own
overload."""

from __future__ import annotations

import asyncio

from service.limits import ClientSlot, ClientSlots, Refusal

ADDRESS = "10.0.0.1"


def take(slots: ClientSlots, client: str = ADDRESS) -> ClientSlot:
    slot = slots.try_take(client)
    assert isinstance(slot, ClientSlot), slot
    return slot


def flowing(slot: ClientSlot) -> ClientSlot:
    slot.sent()  # the first chunk only fills buffers
    slot.sent()
    assert slot.state == "flowing"
    return slot


def test_a_busy_client_gets_its_share_then_waits_then_a_429() -> None:
    slots = ClientSlots(per_client=48, stalled_per_client=4)
    held = [flowing(take(slots)) for _ in range(48)]
    assert slots.try_take(ADDRESS) is None  # not clear yet: one of its own may end
    assert asyncio.run(slots.take(ADDRESS, wait=0.05)) is Refusal.OVER_SHARE
    assert isinstance(slots.try_take("10.0.0.2"), ClientSlot)  # others are not affected
    held[0].give_back()
    held[0].give_back()  # once only
    assert slots.held(ADDRESS) == 47
    assert isinstance(slots.try_take(ADDRESS), ClientSlot)


def test_a_burst_past_the_share_is_served_as_the_address_s_own_streams_end() -> None:
    async def go() -> ClientSlot | Refusal:
        slots = ClientSlots(per_client=2, stalled_per_client=2)
        first, _ = flowing(take(slots)), flowing(take(slots))
        waiting = asyncio.create_task(slots.take(ADDRESS, wait=30))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        first.give_back()
        return await waiting

    assert isinstance(asyncio.run(go()), ClientSlot)


def test_streams_that_never_read_are_refused_as_stalled_once_they_show_it() -> None:
    async def go() -> Refusal | ClientSlot:
        slots = ClientSlots(per_client=2, stalled_per_client=8)
        first, second = take(slots), take(slots)
        first.sent()
        second.sent()
        assert slots.count(ADDRESS, "new") == 2
        waiting = asyncio.create_task(slots.take(ADDRESS, wait=30))
        await asyncio.sleep(0.01)
        first.stalled()
        await asyncio.sleep(0.01)
        assert not waiting.done()  # one of them may still read
        second.stalled()
        return await waiting

    assert asyncio.run(go()) is Refusal.STALLED
    # Streams that neither flow nor stall by the end of the wait are no busy client's either.
    slots = ClientSlots(per_client=1, stalled_per_client=8)
    take(slots)
    assert asyncio.run(slots.take(ADDRESS, wait=0.01)) is Refusal.STALLED


def test_stalled_streams_are_bounded_apart_from_the_share() -> None:
    slots = ClientSlots(per_client=64, stalled_per_client=3)
    held = [take(slots) for _ in range(3)]
    for slot in held:
        slot.stalled()
    assert slots.try_take(ADDRESS) is Refusal.STALLED
    held[0].sent()  # it reads again
    assert slots.count(ADDRESS, "stalled") == 2
    assert slots.count(ADDRESS, "flowing") == 1
    again = take(slots)
    held[1].give_back()
    again.give_back()
    assert slots.held(ADDRESS) == 2
    for slot in held:
        slot.give_back()
    assert slots.held(ADDRESS) == 0
    assert slots.count(ADDRESS, "stalled") == 0
