"""OwnWrites: the memory of an Exchange side's own writes, which makes their echoes free."""

from __future__ import annotations

from calsync.echoes import OwnWrites


def test_an_echo_is_the_same_item_at_the_same_change_key() -> None:
    own = OwnWrites()
    own.remember("Alice@X.example", "item-1", "ck-1")
    assert own.is_echo("alice@x.example", "item-1", "ck-1", consume=False)
    assert not own.is_echo("alice@x.example", "item-1", "ck-2", consume=False)  # edited since
    assert not own.is_echo("alice@x.example", "item-1", None, consume=False)
    assert not own.is_echo("bob@x.example", "item-1", "ck-1", consume=False)


def test_consume_forgets_the_echo_once_seen_and_keep_does_not() -> None:
    own = OwnWrites()
    own.remember("a@x.example", "item-1", "ck-1")
    assert own.is_echo("a@x.example", "item-1", "ck-1", consume=False)
    assert own.is_echo("a@x.example", "item-1", "ck-1", consume=True)
    assert not own.is_echo("a@x.example", "item-1", "ck-1", consume=True)


def test_forgetting_a_mailbox_leaves_the_others() -> None:
    own = OwnWrites()
    own.remember("a@x.example", "item-1", "ck-1")
    own.remember("b@x.example", "item-2", "ck-2")
    own.forget_mailbox("A@x.example")
    assert not own.is_echo("a@x.example", "item-1", "ck-1", consume=False)
    assert own.is_echo("b@x.example", "item-2", "ck-2", consume=False)
    own.forget("b@x.example", "item-2")
    assert not own.is_echo("b@x.example", "item-2", "ck-2", consume=False)


def test_the_oldest_writes_are_dropped_beyond_the_limit() -> None:
    own = OwnWrites(limit=2)
    for n in range(3):
        own.remember("a@x.example", f"item-{n}", "ck")
    assert not own.is_echo("a@x.example", "item-0", "ck", consume=False)
    assert own.is_echo("a@x.example", "item-1", "ck", consume=False)
    assert own.is_echo("a@x.example", "item-2", "ck", consume=False)
