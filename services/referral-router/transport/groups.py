"""Consumer-group membership for the embedded transport, as Kafka's coordinator does it.

Partitions of the subscribed topics are divided round-robin among a group's live members;
every join or leave (and every new topic) is a rebalance. A partition that changes owner
is marked for its new owner to restart from the group's committed offset, which is what
makes uncommitted work of a departed member come back. Membership lives in memory: a
process that crashed has no live members, and its uncommitted work is redelivered when
the group forms again. Thread-safe; the commit check-and-write holds the lock so no
commit can land for a partition that already moved.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .base import CommitFailedError, TopicPartition


@dataclass
class _Member:
    topics: tuple[str, ...]
    owned: set[TopicPartition] = field(default_factory=set)
    to_reset: set[TopicPartition] = field(default_factory=set)


@dataclass
class _Group:
    members: dict[str, _Member] = field(default_factory=dict)  # in join order
    generation: int = 0


class GroupCoordinator:
    """Assigns partitions to group members and guards commits by ownership."""

    def __init__(self, partitions_of: Callable[[str], int | None]) -> None:
        self._partitions_of = partitions_of
        self._lock = threading.Lock()
        self._groups: dict[str, _Group] = {}
        self._ids = itertools.count(1)

    def join(self, group_id: str, topics: Sequence[str]) -> str:
        """Add a member and rebalance; returns its member id."""
        with self._lock:
            member_id = f"{group_id}-{next(self._ids)}"
            group = self._groups.setdefault(group_id, _Group())
            group.members[member_id] = _Member(tuple(dict.fromkeys(topics)))
            self._rebalance(group)
            return member_id

    def leave(self, group_id: str, member_id: str) -> None:
        """Remove a member (its uncommitted work goes to the new owners) and rebalance."""
        with self._lock:
            group = self._groups.get(group_id)
            if group and group.members.pop(member_id, None) is not None:
                self._rebalance(group)

    def topics_changed(self, topics: Sequence[str]) -> None:
        """New topics or partitions: rebalance the groups subscribed to any of them."""
        names = set(topics)
        with self._lock:
            for group in self._groups.values():
                if any(names.intersection(m.topics) for m in group.members.values()):
                    self._rebalance(group)

    def sync(
        self, group_id: str, member_id: str
    ) -> tuple[frozenset[TopicPartition], set[TopicPartition]]:
        """(partitions owned now, partitions to restart at the committed offset)."""
        with self._lock:
            member = self._member(group_id, member_id)
            resets, member.to_reset = member.to_reset, set()
            return frozenset(member.owned), resets

    def commit(
        self,
        group_id: str,
        member_id: str,
        offsets: Mapping[TopicPartition, int],
        write: Callable[[str, Mapping[TopicPartition, int]], None],
    ) -> None:
        """Call ``write`` only if the member owns every partition; else CommitFailedError."""
        with self._lock:
            member = self._member(group_id, member_id)
            lost = set(offsets) - member.owned
            if lost:
                raise CommitFailedError(f"partitions {sorted(lost)} are no longer assigned")
            write(group_id, offsets)

    def _member(self, group_id: str, member_id: str) -> _Member:
        group = self._groups.get(group_id)
        member = group.members.get(member_id) if group else None
        if member is None:
            raise CommitFailedError(f"{member_id} is not a member of group {group_id!r}")
        return member

    def _rebalance(self, group: _Group) -> None:
        group.generation += 1
        topics = sorted({t for m in group.members.values() for t in m.topics})
        new: dict[str, set[TopicPartition]] = {mid: set() for mid in group.members}
        turn = 0  # one round-robin over all partitions, as Kafka's RoundRobinAssignor
        for topic in topics:
            subscribers = [mid for mid, m in group.members.items() if topic in m.topics]
            for partition in range(self._partitions_of(topic) or 0):
                new[subscribers[turn % len(subscribers)]].add((topic, partition))
                turn += 1
        for mid, member in group.members.items():
            gained = new[mid] - member.owned
            member.to_reset = (member.to_reset & new[mid]) | gained
            member.owned = new[mid]
