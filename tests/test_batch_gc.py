"""A batch (a fire, a send) runs with fewer collections, and leaves the thresholds as it found
them, also when it fails, is nested, or overlaps another batch on a second thread."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from publisher.batch_gc import BATCH_THRESHOLD, fewer_collections

Thresholds = tuple[int, int, int]


@pytest.fixture(autouse=True)
def known_thresholds() -> Iterator[Thresholds]:
    saved = gc.get_threshold()
    gc.set_threshold(701, 11, 12)  # not CPython's default, so a restore to defaults shows
    yield (701, 11, 12)
    gc.set_threshold(*saved)


def test_thresholds_are_raised_within_and_restored_after(known_thresholds: Thresholds) -> None:
    with fewer_collections():
        assert gc.get_threshold() == BATCH_THRESHOLD
    assert gc.get_threshold() == known_thresholds


def test_a_failing_batch_restores_them(known_thresholds: Thresholds) -> None:
    with pytest.raises(ValueError, match="bad batch"), fewer_collections():
        raise ValueError("bad batch")
    assert gc.get_threshold() == known_thresholds


def test_nested_batches_restore_only_when_the_outer_one_ends(known_thresholds: Thresholds) -> None:
    @fewer_collections()
    def inner() -> tuple[int, int, int]:
        return gc.get_threshold()

    with fewer_collections():
        assert inner() == BATCH_THRESHOLD
        assert gc.get_threshold() == BATCH_THRESHOLD  # the inner end did not restore
    assert gc.get_threshold() == known_thresholds


def test_overlapping_batches_on_two_threads(known_thresholds: Thresholds) -> None:
    """The first thread leaves while the second is still inside: the second keeps the raised
    thresholds, and the saved ones come back when it leaves."""
    entered, first_left = threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def second() -> None:
        with fewer_collections():
            entered.set()
            first_left.wait(timeout=30)
            seen.append(gc.get_threshold())

    with fewer_collections():
        worker = threading.Thread(target=second)
        worker.start()
        assert entered.wait(timeout=30)
    first_left.set()
    worker.join(timeout=30)
    assert seen == [BATCH_THRESHOLD]
    assert gc.get_threshold() == known_thresholds


def test_cycles_made_in_a_batch_are_still_collected() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    with fewer_collections():
        node = Node()
        ref = weakref.ref(node)
        del node
    gc.collect()
    assert ref() is None
