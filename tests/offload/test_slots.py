"""Load shedding: each client's newest frame waits, the rest are dropped and counted."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from edgewatch.offload.slots import FrameSlots, Job


def _slots(max_clients: int = 8) -> FrameSlots:
    return FrameSlots(threading.Event(), max_clients)


def test_the_newest_frame_waits_and_the_replaced_ones_are_counted_in_the_next_answer():
    slots = _slots()
    client = slots.join("a", print)
    for frame in range(5):
        slots.put(Job(client, frame, b"", 64, 64))
    (job,) = next(slots.batches(8))
    assert (job.frame, job.dropped) == (4, 4)
    slots.put(Job(client, 5, b"", 64, 64))
    slots.answered(client)
    (job,) = next(slots.batches(8))
    assert (job.frame, job.dropped) == (5, 0)
    assert client.dropped_total == 4


def test_a_client_whose_answer_is_not_sent_yet_waits_for_it():
    slots = _slots()
    busy, idle = slots.join("busy", print), slots.join("idle", print)
    slots.put(Job(busy, 1, b"", 64, 64))
    assert [job.frame for job in next(slots.batches(8))] == [1]
    slots.put(Job(busy, 2, b"", 64, 64))  # its answer to 1 is still out
    slots.put(Job(idle, 10, b"", 64, 64))
    assert [job.client.name for job in next(slots.batches(8))] == ["idle"]
    slots.answered(busy)
    assert [job.frame for job in next(slots.batches(8))] == [2]


def test_a_batch_takes_several_clients_longest_waiting_first_up_to_its_size():
    slots = _slots()
    clients = [slots.join(name, print) for name in "abcd"]
    for frame, client in enumerate(reversed(clients)):
        slots.put(Job(client, frame, b"", 64, 64, received=float(frame)))
    assert [job.client.name for job in next(slots.batches(3))] == ["d", "c", "b"]
    assert [job.client.name for job in next(slots.batches(3))] == ["a"]


def test_clients_beyond_the_cap_are_refused_and_one_that_leaves_makes_room():
    slots = _slots(max_clients=2)
    first, _ = slots.join("a", print), slots.join("b", print)
    assert slots.join("c", print) is None
    slots.put(Job(first, 1, b"", 64, 64))
    slots.leave(first)
    assert first.dropped_total == 1 and len(slots) == 1
    assert slots.join("c", print) is not None


def test_the_batches_end_when_the_server_stops():
    stop = threading.Event()
    slots = FrameSlots(stop, 4)
    stop.set()
    assert list(slots.batches(8)) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["put", "take"]), max_size=60))
def test_every_frame_is_answered_dropped_or_waiting(steps: list[str]):
    """Whatever the order of frames and model calls: frames sent = answered + dropped (as the
    answers report them) + the one waiting, and at most one waits."""
    slots = _slots()
    client = slots.join("a", print)
    sent = answered = reported = 0
    batches = slots.batches(8)
    for step in steps:
        if step == "put":
            slots.put(Job(client, sent, b"", 64, 64))
            sent += 1
        elif client.waiting is not None:
            (job,) = next(batches)
            answered += 1
            reported += job.dropped
            slots.answered(client)
    waiting = int(client.waiting is not None)
    assert sent == answered + reported + client.dropped + waiting
    assert client.dropped_total == reported + client.dropped
