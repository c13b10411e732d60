"""What the command side keeps per member, and how one command is decided against it. Pure: no I/O.

`MemberCart` is the member's cart as of a journal position (`version` = the last
`seq_nr`) plus the outcomes of the member's recent commands, so that a command seen again (a client retry with
the same Idempotency-Key, or Kafka redelivering after a crash) gets its first answer instead of a second effect.
`decide_command` decides what one command does; the agent only performs the I/O it asks for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID

from app.cart.rules import (
    EMPTY_CART,
    Cart,
    Command,
    Event,
    GetCart,
    Rejection,
    decide,
    evolve,
)
from app.cart.stored_event import StoredEvent

RECENT_COMMANDS = 64
"""How many command outcomes a member's cart remembers for idempotency (a retry of an older command id is new)."""


@dataclass(frozen=True)
class Outcome:
    """What a command did: the journal range it wrote (first..last, empty when first > last) or its rejection, and
    where its events were emitted on cart-events (empty until they are known to have been)."""

    command_id: str
    first_seq: int
    last_seq: int
    rejection: Mapping[str, Any] | None = None
    positions: tuple[tuple[int, int], ...] = ()
    fingerprint: str | None = None  # of the command; None when rebuilt from the journal (which does not keep it)

    def row(self) -> OutcomeRow:
        return (
            self.command_id,
            self.first_seq,
            self.last_seq,
            _pairs(self.rejection),
            self.positions,
            self.fingerprint,
        )

    @classmethod
    def of_row(cls, row: OutcomeRow) -> Outcome:
        command_id, first_seq, last_seq, rejection, positions, fingerprint = row
        return cls(
            command_id, first_seq, last_seq, None if rejection is None else dict(rejection), positions, fingerprint
        )


OutcomeRow: TypeAlias = tuple[
    str, int, int, tuple[tuple[str, Any], ...] | None, tuple[tuple[int, int], ...], str | None
]
"""An `Outcome` as a plain tuple, the fields in the same order, the rejection as its (key, value) pairs (a tuple
holding a dict stays tracked): how a `MemberCart` keeps its outcomes (below)."""


def _pairs(rejection: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...] | None:
    return None if rejection is None else tuple(rejection.items())


_COMMAND, _LAST, _REJECTION = 0, 2, 3  # in an OutcomeRow


@dataclass(frozen=True, slots=True)
class MemberCart:
    """A member's cart at journal position `version`, with the outcomes of recent commands (oldest first).

    The outcomes are kept as plain tuples of strings and numbers (`rows`), not as `Outcome` objects: the garbage
    collector stops tracking such tuples, and an owner keeps tens of thousands of carts in memory, each with up to
    RECENT_COMMANDS outcomes. As objects, they were ~90% of what a full collection walked in the command worker,
    which stalled every command in flight for 100-450 ms every few seconds once it held ten thousand members
    (docs/benchmarks.md, 2026-12-06, evening). `recent` builds the objects for those who ask."""

    member_id: UUID
    version: int = 0
    cart: Cart = EMPTY_CART
    rows: tuple[OutcomeRow, ...] = ()

    @property
    def recent(self) -> tuple[Outcome, ...]:
        return tuple(Outcome.of_row(row) for row in self.rows)

    def outcome_of(self, command_id: str) -> Outcome | None:
        return next((Outcome.of_row(r) for r in reversed(self.rows) if r[_COMMAND] == command_id), None)

    def with_events(self, events: Sequence[StoredEvent]) -> MemberCart:
        """Apply journal events (in seq_nr order, starting right after `version`) and remember their commands."""
        version, cart, rows = self.version, self.cart, self.rows
        for stored in events:
            if stored.seq_nr != version + 1:
                raise ValueError(f"event {stored.seq_nr} does not follow version {version} of {self.member_id}")
            last = rows[-1] if rows else None
            if last is not None and last[_COMMAND] == stored.command_id and last[_LAST] == stored.seq_nr - 1:
                command, first, _, rejection, emitted, fingerprint = last
                rows = (*rows[:-1], (command, first, stored.seq_nr, rejection, emitted, fingerprint))
            else:
                rows = (*rows, (stored.command_id, stored.seq_nr, stored.seq_nr, None, (), None))[-RECENT_COMMANDS:]
            version, cart = stored.seq_nr, evolve(cart, stored.event)
        return MemberCart(self.member_id, version, cart, rows) if events else self

    def remember_emitted(
        self, command_id: str, positions: Sequence[tuple[int, int]], fingerprint: str | None = None
    ) -> MemberCart:
        """Record where a command's events were emitted, so a retry answers the same without emitting again."""
        rows = rows_with_emitted(self.rows, command_id, positions, fingerprint)
        return self if rows is self.rows else MemberCart(self.member_id, self.version, self.cart, rows)

    def remember_rejection(
        self, command_id: str, rejection: Mapping[str, Any], fingerprint: str | None = None
    ) -> MemberCart:
        row: OutcomeRow = (command_id, self.version + 1, self.version, _pairs(rejection), (), fingerprint)
        return MemberCart(self.member_id, self.version, self.cart, (*self.rows, row)[-RECENT_COMMANDS:])

    def with_rejections(self, rejections: Iterable[Outcome]) -> MemberCart:
        """This state and rejections remembered elsewhere (its snapshot row's, which no later but older state can
        erase), each in its place by the version it was decided at; the newest RECENT_COMMANDS stay."""
        known = {r[_COMMAND] for r in self.rows}
        missing = [o.row() for o in rejections if o.rejection is not None and o.command_id not in known]
        if not missing:
            return self
        # By the version each outcome ends at (a rejection's is the version it saw, so it follows the command that
        # wrote that version); stable: rejections at the same version keep their order, brought-in ones first.
        merged = sorted((*missing, *self.rows), key=lambda r: (r[_LAST], r[_REJECTION] is not None))
        return MemberCart(self.member_id, self.version, self.cart, tuple(merged[-RECENT_COMMANDS:]))

    def keep_rejections_of(self, cached: MemberCart) -> MemberCart:
        """This state (freshly loaded from the journal) plus the rejections a cached state remembered: the journal
        keeps no trace of a rejected command, and its retry must still get the same answer."""
        known = {r[_COMMAND] for r in self.rows}
        kept = tuple(r for r in cached.rows if r[_REJECTION] is not None and r[_COMMAND] not in known)
        if not kept:
            return self
        return MemberCart(self.member_id, self.version, self.cart, (*kept, *self.rows)[-RECENT_COMMANDS:])


def rows_with_emitted(
    rows: tuple[OutcomeRow, ...], command_id: str, positions: Sequence[tuple[int, int]], fingerprint: str | None = None
) -> tuple[OutcomeRow, ...]:
    """Outcome rows with where a command's events were emitted (the same rows when the command is not among them
    or was rejected): `MemberCart.remember_emitted`, for whoever keeps the rows without the cart."""
    # From the newest: the command is almost always the last one or among the last few (a command's outcome
    # is one row: a key seen again among the rows is answered, not applied again). Rebuilding all 64 rows
    # was ~2.7-5% of the command worker's samples at saturation (docs/benchmarks.md, 2026-12-07).
    for i in range(len(rows) - 1, -1, -1):
        r = rows[i]
        if r[_COMMAND] == command_id and r[_REJECTION] is None:
            row = (r[0], r[1], r[2], r[3], tuple(positions), fingerprint or r[5])  # positions, fingerprint
            return (*rows[:i], row, *rows[i + 1 :])
    return rows


def rejection_to_dict(rejection: Rejection) -> dict[str, Any]:
    """`{"error": "<RejectionName>", "reason": "...", <its fields>}` (ids and numbers as JSON strings/ints)."""
    fields = {k: (str(v) if isinstance(v, UUID) else v) for k, v in vars(rejection).items()}
    return {"error": type(rejection).__name__, "reason": rejection.reason, **fields}


# --- Handling one command ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """New events to append at `expected_version` + 1..."""

    events: tuple[StoredEvent, ...]
    expected_version: int


@dataclass(frozen=True)
class Rejected:
    rejection: dict[str, Any]


@dataclass(frozen=True)
class AlreadyHandled:
    """The command id was handled before: answer as then; its events (if any) are first..last in the journal."""

    outcome: Outcome


@dataclass(frozen=True)
class KeyReused:
    """The command id was used before for a different command: refuse rather than answer for the other one."""

    outcome: Outcome


@dataclass(frozen=True)
class Unchanged:
    """A query, or a command that changes nothing (adjust by 0): answer with the cart as it is."""


CommandDecision: TypeAlias = Accepted | Rejected | AlreadyHandled | KeyReused | Unchanged


def decide_command(
    state: MemberCart,
    command_id: str,
    command: Command,
    *,
    now: datetime,
    new_cart_id: UUID,
    new_event_id: Callable[[], UUID],
    fingerprint: str | None = None,
) -> CommandDecision:
    """Decide one command; ids and time are given by the caller, so this stays deterministic under test."""
    if not isinstance(command, GetCart):
        previous = state.outcome_of(command_id)
        if previous is not None:
            if fingerprint and previous.fingerprint and fingerprint != previous.fingerprint:
                return KeyReused(previous)
            return AlreadyHandled(previous)
    result = decide(state.cart, command, now=now, new_cart_id=new_cart_id)
    if not isinstance(result, tuple):
        return Rejected(rejection_to_dict(result))
    if not result:
        return Unchanged()
    events = tuple(
        StoredEvent(
            event_id=new_event_id(),
            member_id=state.member_id,
            cart_id=_cart_id_of(event),
            seq_nr=state.version + i,
            command_id=command_id,
            occurred_at=now,
            event=event,
        )
        for i, event in enumerate(result, start=1)
    )
    return Accepted(events, state.version)


def _cart_id_of(event: Event) -> UUID:
    cart_id: UUID = event.cart_id
    return cart_id
