"""The guided `/signal` form's rules for marketplace providers who do not code: reading prices as people type
them, checking each answer with the ingest API's own model (`SignalIn`) as soon as it is given, and a
provider's open signals (to report a target hit, a stop or a close). Publishing itself is the API's call,
`SignalService.ingest` / `add_event` with the provider's id: the same chain, the same delivery queue."""

from __future__ import annotations

import re
import secrets
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from db.models_signals import Signal, SignalEvent
from services import track_record
from services.signals import InvalidInput, SignalIn, SignalService, stored_id, validate

#: The form asks in this order (SignalIn's own field order, so the first bad field is the first bad answer).
STEPS = ("ecosystem", "symbol", "side", "entry", "take_profits", "stop_loss", "timeframe", "note")
TIMEFRAMES = ("15m", "1h", "4h", "1d", "1w")
OPEN_SHOWN = 10  # open signals listed on the form's first screen
_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_GROUPED = re.compile(r"\d{1,3}(,\d{3})+\.\d+")  # "1,500.25": commas that group digits
#: Why "1,500" (or "150,158") is refused from a reader writing decimal points: 1500, 1.5 or two prices?
AMBIGUOUS = "is ambiguous: write decimals with a dot and separate prices with spaces"
#: A stop loss on the right side of any entry a price may have (a long's below, a short's above), standing in
#: while the form has not asked for it, so the targets are checked against the entry by SignalIn at once.
_STAND_IN_STOP = {"long": "0.000000000000000001", "short": "999999999999999999"}


def new_form_id() -> str:
    """The sender id of one filled form: Publish tapped twice (or the tap redelivered) stores one signal."""
    return f"form-{secrets.token_hex(8)}"


def read_price(text: str, *, decimal_comma: bool, field: str = "price") -> str:
    """One price as typed ("142,5", "1 500,25", "$0.45") as the decimal string the API takes; SignalIn then checks
    it. A reader writing decimal commas has every comma read as the point. For one writing decimal points, a comma
    is the point only where it cannot be a thousands separator ("142,5"); "1,500.25" is grouped; "1,500" could be
    either, so it is refused (InvalidInput, AMBIGUOUS) rather than guessed."""
    value = _SPACES.sub("", text or "").removeprefix("$").removesuffix("$")
    if "," not in value:
        return value
    if decimal_comma:
        return value.replace(",", ".") if value.count(",") == 1 and "." not in value else value
    if "." in value and _GROUPED.fullmatch(value):
        return value.replace(",", "")
    whole, _sep, fraction = value.partition(",")
    if value.count(",") == 1 and "." not in value and len(fraction) != 3:
        return f"{whole}.{fraction}"
    raise InvalidInput(field, AMBIGUOUS)


def read_prices(text: str, *, decimal_comma: bool, field: str = "take_profits") -> list[str]:
    """Several prices separated by spaces, ";" or ", " ("150 158", "150, 158", "150,5 158,5"), each read as
    `read_price` reads one."""
    tokens = (token.strip(",") for token in re.split(r"[\s\u00a0\u202f;]+", text or ""))
    return [read_price(token, decimal_comma=decimal_comma, field=field) for token in tokens if token]


def check_answers(answers: dict[str, Any]) -> SignalIn | None:
    """The form's answers so far (the first of STEPS, plus `id`), checked by the ingest API's model: raises
    InvalidInput naming the first bad answer; None while answers are still to come (the whole signal once
    every required one is there)."""
    payload = dict(answers)
    stand_in = "stop_loss" not in payload and {"side", "entry", "take_profits"} <= payload.keys()
    if stand_in:
        payload["stop_loss"] = _STAND_IN_STOP.get(str(payload["side"]).strip().lower(), "1")
    try:
        signal = validate(SignalIn, payload)
    except InvalidInput as exc:
        if exc.field.split(".")[0] in answers:
            raise
        return None  # the first problem is an answer not given yet: everything so far is right
    return None if stand_in else signal


# ------------------------------------------------------------------------------------------ open signals

@dataclass(frozen=True, slots=True)
class OpenSignal:
    signal: Signal
    hit: frozenset[int]  # the take-profit levels already reported
    closed: bool


def sender_ref(signal: Signal) -> str:
    """The id the provider's own events name the signal by (SignalService.add_event), as the API would."""
    prefix = stored_id(signal.provider_id, "")
    return signal.external_id.removeprefix(prefix) if signal.provider_id is not None else signal.external_id


async def open_signals(signals: SignalService, provider_id: int, limit: int = OPEN_SHOWN) -> list[Signal]:
    """The provider's signals still open (not stopped, closed or past the last target), newest first."""
    async with signals.db.session() as session:
        ended = select(SignalEvent.signal_id).where(SignalEvent.provider_id == provider_id,
                                                    SignalEvent.type.in_(track_record.CLOSING))
        rows = list(await session.scalars(
            select(Signal).where(Signal.provider_id == provider_id, Signal.id.not_in(ended))
            .order_by(Signal.id.desc()).limit(limit * 4)))
        events: dict[int, list[SignalEvent]] = defaultdict(list)
        if rows:
            for event in await session.scalars(select(SignalEvent).where(
                    SignalEvent.signal_id.in_([s.id for s in rows]))):
                events[event.signal_id].append(event)
    return [s for s in rows if track_record.outcome(s, events[s.id]) is None][:limit]


async def own_signal(signals: SignalService, provider_id: int, signal_id: int) -> OpenSignal | None:
    """One of the provider's own signals with what was reported on it; None for anyone else's (or none)."""
    async with signals.db.session() as session:
        signal = await session.get(Signal, signal_id)
        if signal is None or signal.provider_id != provider_id:
            return None
        events = list(await session.scalars(select(SignalEvent).where(SignalEvent.signal_id == signal.id)))
    return OpenSignal(signal, frozenset(e.level for e in events if e.type == "tp_hit"),
                      track_record.outcome(signal, events) is not None)
