"""lbam.utils.parallel.ordered_map: results in order, bounded work ahead, early stop, errors."""

from __future__ import annotations

import threading
import time

import pytest

from lbam.utils.machine import usable_cpus
from lbam.utils.parallel import ordered_map


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_results_come_in_the_items_order(workers):
    def slow_first(item):
        time.sleep(0.02 if item % 3 == 0 else 0.0)  # later items finish first
        return item * item

    assert list(ordered_map(slow_first, range(20), workers)) == [i * i for i in range(20)]


def test_threads_run_at_once():
    barrier = threading.Barrier(2, timeout=5)  # breaks (raises) unless two calls wait together
    assert list(ordered_map(lambda item: barrier.wait() >= 0, range(4), 2)) == [True] * 4


def test_work_ahead_is_bounded_and_stopping_early_starts_nothing_more():
    started = []

    def record(item):
        started.append(item)
        time.sleep(0.01)
        return item

    results = ordered_map(record, range(1000), 2)
    assert next(results) == 0
    results.close()  # the consumer stops: nothing beyond what was queued may start
    assert len(started) <= 1 + 2 * 2
    time.sleep(0.05)
    assert len(started) <= 1 + 2 * 2


def test_an_error_in_the_function_reaches_the_consumer_at_its_item():
    def fail_at_three(item):
        if item == 3:
            raise ValueError("three")
        return item

    seen = []
    with pytest.raises(ValueError, match="three"):
        for value in ordered_map(fail_at_three, range(10), 2):
            seen.append(value)
    assert seen == [0, 1, 2]


def test_usable_cpus_is_at_least_one():
    assert usable_cpus() >= 1
