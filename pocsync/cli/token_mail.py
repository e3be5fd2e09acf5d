"""``pocsync token issue --poc KEY --send``: the token goes to the entry's own mailbox (issue 15, ADR 27).

One message to the entry's own addresses (at most ``[smtp] max_recipients``, each validated), in the
entry's first language where a translation exists, with the PoC page, the expiry and how to renew.
Nothing of any other entry is in it.  The token is never printed when it is mailed.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from pocsync import mail
from pocsync.core import model
from pocsync.directory import campaigns
from pocsync.errors import MailError
from pocsync.folder.nodedir import NodeDir


def send_token(nd: NodeDir, entry: dict[str, Any], key: str, token: str, ttl_s: int) -> list[str]:
    """Mail ``token`` to the entry's addresses; returns their labels ("email 1", …).  MailError when it fails."""
    settings = nd.config.smtp
    assert settings is not None
    emails = campaigns.emails_of(entry)
    if not emails:
        raise MailError(f"{key} lists no email address: hand the token over another way", reason="bad_address")
    to = emails[: settings.max_recipients]
    labels = [f"email {i + 1}" for i in range(len(to))]
    url = nd.config.api.public_url.rstrip("/") or "http://{}:{}".format(*nd.config.api.host_port)
    state, kind = model.parse_key(key)
    lang = campaigns.language_of(entry)
    expires = datetime.fromtimestamp(time.time() + ttl_s, UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = campaigns.text_message(
        "token",
        lang,
        directory=nd.config.node.organisation or f"pocsync node {nd.node_id}",
        state=state,
        kind=campaigns.KIND_WORDS[lang][kind],
        page=f"{url}/",
        renew=f"{url}/v1/token/renew",
        token=token,
        expires=expires,
    )
    msg = mail.build_message(settings, to=to, subject=text.subject, body=text.body, language=text.language)
    result = asyncio.run(mail.send(settings, msg))
    if not result.accepted:
        codes = sorted({str(c) for c, _ in result.refused.values()})
        raise MailError(
            f"the SMTP relay refused every address of {key} ({', '.join(codes)}): nothing was issued",
            reason="smtp_refused",
        )
    # the recipients as written into To (checked, in the order of `to`): name only those the relay accepted
    rcpts = [a.strip() for a in str(msg["To"]).split(",") if a.strip()]
    accepted = {a.lower() for a in result.accepted}
    return [label for label, a in zip(labels, rcpts) if a.lower() in accepted]
