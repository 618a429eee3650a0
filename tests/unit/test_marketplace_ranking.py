"""The marketplace ranking on a known history: each part and the score by hand, and the rules before a
provider is ranked at all."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services import marketplace_ranking as ranking
from services.marketplace_ranking import Closed, Unranked

T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
NOW = T0 + timedelta(days=40)
LOSSES = {4: Decimal("-0.01"), 9: Decimal("-0.06"), 14: Decimal("-0.01"), 19: Decimal("-0.01")}


def history(count: int = 20) -> list[Closed]:
    """Signal i arrives on day 2i and closes an hour later: +2 %, except i = 4, 14, 19 (−1 %) and 9 (−6 %)."""
    return [Closed(T0 + timedelta(days=2 * i), T0 + timedelta(days=2 * i, hours=1),
                   LOSSES.get(i, Decimal("0.02")), None) for i in range(count)]


def test_score_of_a_known_history_part_by_part():
    closed = history()
    starts = [T0 + timedelta(days=20), T0 + timedelta(days=39)]
    got = ranking.score(closed, first_signal_at=T0, last_signal_at=T0 + timedelta(days=38),
                        subscriber_starts=starts, now=NOW)
    assert got.unranked is None
    # 16 × 2 % − 3 × 1 % − 6 % = 23 % over 40 days: 17.25 % per 30 days
    assert got.monthly_return == Decimal("0.1725")
    assert got.parts["return"] == Decimal("0.5") + Decimal("0.1725") / Decimal("0.545")
    # the equity peaks at 1.15 (after signal 8) and falls to 1.09: 0.06 / 1.15
    assert got.parts["drawdown"] == 1 - (Decimal("0.06") / Decimal("1.15")) / Decimal("0.5")
    # six ISO weeks with closings; the third (+2 +2 −6 +2) sums to 0, the rest are positive
    assert got.parts["consistency"] == Decimal(5) / 6
    # from day 20: signals 10–19, 8 × 2 % − 2 × 1 % = 14 % (20 days counted as 30); from day 39: nothing yet
    assert got.subscribers_return == Decimal("0.07")
    assert got.parts["subscribers"] == (Decimal("0.5") + Decimal("0.14") / Decimal("0.48") + Decimal("0.5")) / 2
    # 100 × (0.35 × 0.81651 + 0.25 × 0.89565 + 0.20 × 0.83333 + 0.20 × 0.64583)
    assert got.score == Decimal("80.55")


def test_without_subscribers_the_record_stands_for_them():
    got = ranking.score(history(), first_signal_at=T0, last_signal_at=T0 + timedelta(days=38),
                        subscriber_starts=[], now=NOW)
    assert got.subscribers_return is None and got.parts["subscribers"] == got.parts["return"]
    assert got.score == Decimal("83.97")  # the subscribers' 0.64583 replaced by 0.81651: 80.55 + 20 × 0.17068


def test_rules_before_a_provider_is_ranked():
    recent = T0 + timedelta(days=38)
    assert ranking.eligibility(history(19), T0, recent, NOW) is Unranked.FEW_SIGNALS
    assert ranking.eligibility(history(), NOW - timedelta(days=29), recent, NOW) is Unranked.SHORT_HISTORY
    assert ranking.eligibility(history(), T0, NOW - timedelta(days=15), NOW) is Unranked.INACTIVE
    assert ranking.eligibility(history(), NOW - timedelta(days=30), NOW - timedelta(days=14), NOW) is None
    unranked = ranking.score(history(19), first_signal_at=T0, last_signal_at=recent, subscriber_starts=[], now=NOW)
    assert unranked.score is None and unranked.unranked is Unranked.FEW_SIGNALS


def test_mapping_scales():
    assert ranking.squash(Decimal(0)) == Decimal("0.5")
    assert ranking.squash(Decimal("0.1")) == Decimal("0.75") and ranking.squash(Decimal("-0.1")) == Decimal("0.25")
    assert ranking.drawdown_part(Decimal("0.25")) == Decimal("0.5") and ranking.drawdown_part(Decimal("0.8")) == 0


def test_card_figures_per_period():
    closed = history()
    figures = ranking.card_figures(closed, [t.opened_at for t in closed], NOW)
    month, quarter, everything = figures["30d"], figures["90d"], figures["all"]
    assert month.figures.trades == 15 and month.active_days == 15  # signals 5–19 (day 10 onwards)
    assert month.signals_per_week == Decimal("3.5")  # 15 in 30 days
    assert everything.signals_per_week == Decimal("3.5")  # 20 in the 40 days since the first
    assert quarter.signals_per_week == Decimal("3.5")  # 90 days, but the provider's history is 40
    assert everything.figures.cumulative_return == Decimal("0.23") and everything.figures.wins == 16
    assert everything.figures.max_drawdown == Decimal("0.06") / Decimal("1.15")
