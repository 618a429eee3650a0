"""Plan lifecycle bookkeeping: reminders and expiry notices, one row per (user, end of paid time, kind)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, UTCDateTime, utcnow


class PlanNotice(Base):
    """A reminder ("remind_3d", "remind_1d") or the expiry step ("expired") for the paid time that ends
    at `ends_at`. The unique key makes the job safe to run twice: a notice is claimed by inserting its
    row, and a renewal moves the end, so the new end gets its own notices."""

    __tablename__ = "plan_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # claimed, sent, skipped
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("user_id", "ends_at", "kind"),)
