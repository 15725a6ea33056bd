import threading
import time

import pytest

from edgewatch.pipeline import Channel, Stage


def test_bounded_channel_makes_the_producer_wait_until_the_consumer_takes():
    channel: Channel[int] = Channel(2)
    channel.put(1)
    channel.put(2)
    done = threading.Event()
    threading.Thread(target=lambda: (channel.put(3), done.set()), daemon=True).start()
    assert not done.wait(0.3)
    channel.close()
    taken = iter(channel)
    assert next(taken) == 1
    assert done.wait(2)
    assert list(taken) == [2, 3]


def test_keep_latest_channel_drops_the_oldest_and_counts_it():
    channel: Channel[int] = Channel(1, keep_latest=True)
    for item in range(5):
        channel.put(item)
    channel.close()
    assert list(channel) == [4]
    assert channel.dropped == 4


def test_stop_releases_a_waiting_producer_and_consumer():
    stop = threading.Event()
    full: Channel[int] = Channel(1, stop=stop)
    full.put(0)
    empty: Channel[int] = Channel(1, stop=stop)
    results = []
    producer = threading.Thread(target=lambda: results.append(full.put(1)))
    consumer = threading.Thread(target=lambda: results.append(list(empty)))
    producer.start()
    consumer.start()
    time.sleep(0.2)
    stop.set()
    producer.join(2)
    consumer.join(2)
    assert sorted(results, key=str) == [False, []]


def test_stages_keep_order_and_close_downstream():
    stop = threading.Event()
    middle: Channel[int] = Channel(2, stop=stop)
    out: Channel[int] = Channel(100, stop=stop)
    stages = [Stage("a", range(50), lambda x: x * 10, middle, stop), Stage("b", middle, lambda x: x + 1, out, stop)]
    for stage in stages:
        stage.start()
    for stage in stages:
        stage.join(5)
    assert list(out) == [x * 10 + 1 for x in range(50)]


def test_an_error_in_one_stage_stops_the_others_and_is_kept():
    stop = threading.Event()
    middle: Channel[int] = Channel(2, stop=stop)

    def explode(x: int) -> int:
        if x == 3:
            raise ValueError("bad frame")
        return x

    endless = Stage("source", iter(int, 1), lambda x: x + 3, middle, stop)
    failing = Stage("work", middle, explode, None, stop)
    endless.start()
    failing.start()
    failing.join(5)
    endless.join(5)
    assert not endless.is_alive()
    assert isinstance(failing.error, ValueError)
    assert stop.is_set()


def test_channel_refuses_zero_capacity():
    with pytest.raises(ValueError):
        Channel(0)
