"""What the API's handlers and the daemon's loops do to the running node: sign ops as this node, and the
state of its communication checks.  Below ``api`` and ``node``, so that both reach it without a cycle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pocsync.store import Store


async def sign(rt: Any, ops: list[dict[str, Any]], *, author: str) -> None:
    def go(s: Store) -> None:
        s.edit(ops, key=rt.nd.key_for_next_edit(s), author=author)

    await rt.worker.run(go)
    rt.publish_now.set()


Sign = Callable[[list[dict[str, Any]]], Any]


def signer(rt: Any) -> Callable[[Store], Sign]:
    """A ``sign(ops)`` for campaign functions: one change-set of ``ops`` by this node (on the store thread)."""

    def make(store: Store) -> Sign:
        def sign(ops: list[dict[str, Any]]) -> Any:
            return store.edit(ops, key=rt.nd.key_for_next_edit(store), author="checks")

        return sign

    return make


def checks_status(rt: Any) -> dict[str, Any]:
    """The node's communication-check state (made on first use)."""
    st = getattr(rt, "checks", None)
    if st is None:
        st = rt.checks = {
            "smtp": "not configured",
            "last_error": None,
            "last_error_at": None,
            "messages_sent": 0,
            "bounced": 0,
            "invalid": 0,
            "no_response_signed": 0,
            "reminders_sent": 0,
            "last_reminder_ms": None,
            "reports_mailed": 0,
            "reports_forwarded": 0,
            "campaigns_held": None,
        }
    return st
