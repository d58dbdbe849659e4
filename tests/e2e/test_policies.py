"""Operator policies on id tags, the same for stations of both OCPP versions: the verdict on known, blocked,
expired and unknown tags, and the unknown-tag policy."""

from __future__ import annotations

from datetime import timedelta

from optivgi_csms.domain.time import utc_now
from optivgi_csms.store.models import IdTag, Transaction
from tests.support.driver import connect


async def add_tags(csms, *tags: IdTag) -> None:
    async def op(session):
        session.add_all(tags)

    await csms.database.write(op)


async def test_id_tag_verdicts(csms, ocpp_version: str) -> None:
    now = utc_now()
    await add_tags(
        csms,
        IdTag(
            id_tag="GOOD",
            status="Accepted",
            parent_id_tag="FLEET",
            expiry_date=now + timedelta(days=30),
            created_at=now,
        ),
        IdTag(id_tag="BLOCKED", status="Blocked", created_at=now),
        IdTag(id_tag="OLD", status="Accepted", expiry_date=now - timedelta(days=1), created_at=now),
    )
    async with connect(csms, "CP-T", ocpp_version) as station:
        good = await station.authorize("GOOD")
        # 1.6 parentIdTag / expiryDate; 2.0.1 groupIdToken / cacheExpiryDateTime
        assert good.status == "Accepted" and good.parent_id_tag == "FLEET" and good.expiry.endswith("Z")
        assert (await station.authorize("BLOCKED")).status == "Blocked"
        expired = await station.authorize("OLD")
        assert expired.status == "Expired" and expired.parent_id_tag is None
        # Unknown tags are accepted by default (the quick start charges without set-up).
        stranger = await station.authorize("STRANGER")
        assert stranger.status == "Accepted" and (stranger.parent_id_tag, stranger.expiry) == (None, None)
        # the verdict on the tag that starts a session is the same
        assert (await station.start("BLOCKED")).verdict.status == "Blocked"


async def test_unknown_tags_rejected_when_configured(make_csms, ocpp_version: str) -> None:
    csms = await make_csms(unknown_id_tags="reject")
    async with connect(csms, "CP-R", ocpp_version) as station:
        assert (await station.authorize("STRANGER")).status == "Invalid"
        # The station started anyway (e.g. offline): the session is still recorded, with the verdict.
        session = await station.start("STRANGER")
        assert session.verdict.status == "Invalid"
    async with csms.database.read() as db:
        transaction = await db.get(Transaction, session.id)
        assert (transaction.station_id, transaction.id_tag) == ("CP-R", "STRANGER")
        assert transaction.authorization_status == "Invalid" and transaction.stopped_at is None
