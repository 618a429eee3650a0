"""Each admin's own choices (absent row = the defaults)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, true
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, UTCDateTime, utcnow


class AdminPrefs(Base):
    __tablename__ = "admin_prefs"

    admin_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    sale_notices: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
