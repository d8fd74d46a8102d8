"""Packing mailboxes into subscription groups: pure, deterministic, no I/O.

A group is one GetStreamingEvents connection: at most ``limit`` members, its anchor is its first
member. ``plan_groups`` turns the current groups and the wanted mailboxes into the next groups
with as little churn as possible:

* members that are no longer wanted leave their group (other members stay where they are);
* newcomers (in address order) fill the free places of the existing groups first, then open new
  groups of up to ``limit`` (so a fresh start is a stable packing by address: 450 mailboxes at
  200 per connection make groups of 200, 200 and 50);
* at most ``max_groups`` groups: whoever does not fit is polled (``GroupPlan.polled``); a smaller
  ``limit`` or ``max_groups`` (after a reload) moves the excess out the same way;
* fragmentation is repaired: while there are more groups than ``ceil(members / limit)``, the
  smallest group is closed and its members move into the free places of the others (there is
  always room: the other groups have at least that many free places).

The result is aligned with the input: ``groups[i]`` is the new membership of ``current[i]`` (an
empty tuple closes it); entries past ``len(current)`` are new groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GroupPlan:
    groups: tuple[tuple[str, ...], ...]
    polled: tuple[str, ...] = ()

    @property
    def live(self) -> list[tuple[str, ...]]:
        return [g for g in self.groups if g]


def plan_groups(
    current: Sequence[Sequence[str]], wanted: Iterable[str], limit: int, max_groups: int
) -> GroupPlan:
    if limit < 1 or max_groups < 0:
        raise ValueError("limit must be >= 1 and max_groups >= 0")
    wanted_set = set(wanted)
    groups = [[m for m in group if m in wanted_set][:limit] for group in current]
    placed = {m for group in groups for m in group}
    newcomers = sorted(wanted_set - placed)  # a smaller limit (reload) sends the excess here
    position = 0
    for group in groups:  # free places of the existing groups first
        if group and position < len(newcomers):
            take = min(limit - len(group), len(newcomers) - position)
            group.extend(newcomers[position : position + take])
            position += take
    while position < len(newcomers) and _live(groups) < max_groups:
        groups.append(newcomers[position : position + limit])
        position += limit
    _defragment(groups, limit)
    polled = newcomers[position:]
    while _live(groups) > max_groups:  # fewer connections allowed (reload): the smallest go
        victim = _smallest(groups)
        polled.extend(groups[victim])
        groups[victim] = []
    return GroupPlan(tuple(tuple(g) for g in groups), tuple(sorted(polled)))


def _live(groups: list[list[str]]) -> int:
    return sum(1 for g in groups if g)


def _smallest(groups: list[list[str]]) -> int:
    """The smallest live group (the last one of equal size)."""
    return min((i for i, g in enumerate(groups) if g), key=lambda i: (len(groups[i]), -i))


def _defragment(groups: list[list[str]], limit: int) -> None:
    members = sum(len(g) for g in groups)
    needed = -(-members // limit)
    while _live(groups) > needed:
        # close the smallest group (the last one of equal size), fill the fullest groups first
        victim = _smallest(groups)
        moving = groups[victim]
        groups[victim] = []
        targets = sorted(
            (i for i, g in enumerate(groups) if g and len(g) < limit),
            key=lambda i: (-len(groups[i]), i),
        )
        for index in targets:
            room = limit - len(groups[index])
            groups[index].extend(moving[:room])
            moving = moving[room:]
            if not moving:
                break
        if moving:  # cannot happen (see the module docstring); keep the members grouped anyway
            groups[victim] = moving
            return
