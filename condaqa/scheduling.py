"""An xdist scheduler that sends each group of tests (an environment's) to one worker, as one unit.

It implements xdist's public scheduler protocol (`xdist.scheduler.Scheduling`, returned from the
`pytest_xdist_make_scheduler` hook). xdist's own `--dist loadgroup` would do this from `xdist_group`
marks, but it writes the group into a private attribute of the item that pytest 9.2 no longer reads
(pytest-xdist#1386), so the tests are spread as if unmarked; and overriding the scope split of
xdist's schedulers is private. The group of a test is read from its node id, which is all the
controller gets from the workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

LOW_WATER = 2  # a worker holds the last test it was sent until it gets more or is shut down


class GroupScheduling:
    """Whole groups to one worker each, in collection order; more groups while a worker holds fewer than
    LOW_WATER tests (it runs its last one only once it has a next one, or is told to stop)."""

    def __init__(self, numnodes: int, group_of: Callable[[str], str], log: Any) -> None:
        self.numnodes, self.group_of, self.log = numnodes, group_of, log
        self.collections: dict[Any, list[str]] = {}
        self.queue: dict[str, list[str]] | None = None  # group -> node ids not yet sent
        self.assigned: dict[Any, dict[str, bool]] = {}  # worker -> node id -> done

    @property
    def nodes(self) -> list[Any]:
        return list(self.assigned)

    @property
    def collection_is_completed(self) -> bool:
        return len(self.collections) >= self.numnodes

    @property
    def tests_finished(self) -> bool:
        return (self.collection_is_completed and self.queue is not None and not self.queue
                and all(self._pending(node) < LOW_WATER for node in self.assigned))

    @property
    def has_pending(self) -> bool:
        return bool(self.queue) or any(self._pending(node) for node in self.assigned)

    def add_node(self, node: Any) -> None:
        self.assigned[node] = {}

    def add_node_collection(self, node: Any, collection: Sequence[str]) -> None:
        first = next(iter(self.collections.values()), None)
        if first is not None and list(collection) != first:
            self.log(f"{node.gateway.id} collected other tests than the first worker: it gets none")
            return
        self.collections[node] = list(collection)

    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
        self.assigned[node][self.collections[node][item_index]] = True
        self._refill(node)

    def mark_test_pending(self, item: str) -> None:
        raise NotImplementedError("tests are grouped: one cannot be moved alone")

    def remove_pending_tests_from_node(self, node: Any, indices: Sequence[int]) -> None:
        raise NotImplementedError("tests are grouped: they cannot be taken from a worker")

    def remove_node(self, node: Any) -> str | None:
        """Drop a worker; if it crashed, its unfinished tests go back to the queue, the first one is the crash."""
        left = [nodeid for nodeid, done in self.assigned.pop(node).items() if not done]
        if not left:
            return None
        if self.queue is not None and left[1:]:
            self.queue[f"{left[0]} (again)"] = left[1:]
            for other in self.nodes:
                self._refill(other)
        return left[0]

    def schedule(self) -> None:
        if self.queue is None:
            collection = next(iter(self.collections.values()), [])
            self.queue = {}
            for nodeid in collection:
                self.queue.setdefault(self.group_of(nodeid), []).append(nodeid)
        for node in self.nodes:
            self._refill(node)

    def _pending(self, node: Any) -> int:
        return sum(not done for done in self.assigned[node].values())

    def _refill(self, node: Any) -> None:
        if node.shutting_down or node not in self.collections or self.queue is None:
            return
        while self.queue and self._pending(node) < LOW_WATER:
            nodeids = self.queue.pop(next(iter(self.queue)))
            self.assigned[node].update(dict.fromkeys(nodeids, False))
            index = {nodeid: i for i, nodeid in enumerate(self.collections[node])}
            node.send_runtest_some([index[nodeid] for nodeid in nodeids])
        if not self.queue:  # the worker runs what it was sent, then stops
            node.shutdown()
