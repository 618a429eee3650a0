"""Moved to presentation.texts (shared wording below handlers and workers); this re-export goes in a later round."""

from presentation.texts import *  # noqa: F403
