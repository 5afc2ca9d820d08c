"""What a mode applies: one value, asked everywhere a mode makes a difference.

enforce applies everything. dry-run is for finding out what enforce would do on live traffic: it
takes every decision and check, logs and counts them, and changes nothing: a request a check would
refuse is forwarded, records go out as the backend's bytes, an undecidable request or answer is
passed on as it came (counted), never refused.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Effects:
    block: bool        # a request a check refuses is refused (the backend never sees it); else logged, forwarded
    apply: bool        # decisions change records (redact, drop; shape to what was asked; seal etags), counts
                       # leave hidden contacts out, and the sentinel's redact mode stubs what it finds
    fail_closed: bool  # an undecidable request or answer is refused (502/503); else passed on as it came

    @property
    def word(self) -> str:
        """What a refusal was in this mode, for the logs and the rollout report."""
        return "refused" if self.block else "would_refuse"


ENFORCE = Effects(block=True, apply=True, fail_closed=True)
DRY_RUN = Effects(block=False, apply=False, fail_closed=False)
