"""What the topic catalogue says: the topics, their cleanup policies and co-partitioning
(that a broker gets exactly this is tests/integration/test_topic_catalogue.py)."""

from __future__ import annotations

from schemas.topics import DAY_MS, LEARNING_RECORDS, catalogue


def test_catalogue_has_the_topics_the_design_names():
    names = {t.name for t in catalogue(4, ["cmars", "other"])}
    assert {
        "lms.learning-records",
        "lms.user-profiles",
        "lrx.course-recipients",
        "lrx.ineligible",
        "lrx.delivery-receipts",
        "lrx.outbox.cmars",
        "lrx.dlq.cmars",
        "lrx.outbox.other",
        "lrx.dlq.other",
    } <= names


def test_profiles_recipients_and_ledger_are_compacted_and_records_outlive_two_periods():
    by_name = {t.name: t for t in catalogue(4, ["cmars"])}
    for name in ("lms.user-profiles", "lrx.course-recipients", "lrx.delivery-receipts"):
        assert by_name[name].configs()["cleanup.policy"] == "compact", name
    records = by_name[LEARNING_RECORDS].configs()
    assert records["cleanup.policy"] == "delete"
    assert int(records["retention.ms"]) >= 2 * 366 * DAY_MS


def test_streams_and_their_tables_are_co_partitioned():
    by_name = {t.name: t for t in catalogue(6, ["cmars"])}
    assert by_name["lms.learning-records"].partitions == by_name["lms.user-profiles"].partitions
