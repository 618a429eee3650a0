"""Charts as PNG bytes (matplotlib, no display needed)."""

from __future__ import annotations

import io
from datetime import date

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot as plt


def revenue_chart(days: list[tuple[date, int]], title: str) -> bytes:
    """Bars of daily revenue in USD (cents converted for drawing only)."""
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    try:
        ax.bar([d for d, _ in days], [cents / 100 for _, cents in days], color="#2f80ed", width=0.8)
        ax.set_title(title, fontsize=11)
        ax.set_ylabel("USD")
        ax.grid(axis="y", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        fig.autofmt_xdate()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)
