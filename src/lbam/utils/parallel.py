"""Work spread over threads, for code whose heavy part releases the GIL (native libraries, torch)."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def ordered_map(function: Callable[[Item], Result], items: Iterable[Item], workers: int) -> Iterator[Result]:
    """``function(item)`` for each of ``items``, yielded in the items' order, computed by up to
    ``workers`` threads (in the calling thread when ``workers`` is 1).

    At most ``2 * workers`` items are started ahead of the one being yielded, so memory stays
    bounded however many items there are. Closing the iterator early (an exception in the loop
    that consumes it) cancels the items not yet started and waits for the running ones; an
    exception in ``function`` is raised where its result would have been yielded.
    """
    if workers <= 1:
        yield from map(function, items)
        return
    queue = iter(items)
    pending: collections.deque[Future[Result]] = collections.deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="lbam") as pool:
        try:
            pending.extend(pool.submit(function, item) for item in itertools.islice(queue, 2 * workers))
            while pending:
                result = pending.popleft().result()
                pending.extend(pool.submit(function, item) for item in itertools.islice(queue, 1))
                yield result
        finally:
            for future in pending:
                future.cancel()
