"""The preemption-notice watcher against a local HTTP server imitating the GCP metadata server and
AWS IMDSv2 as documented (tests/faults/metadata_server.py): no real cloud was asked."""

from __future__ import annotations

import time

from runner.remote.preemption import Watcher
from tests.buckets import free_port
from tests.faults.metadata_server import metadata_server


def test_gcp_preempted_true_is_a_notice_with_thirty_seconds():
    with metadata_server() as md:
        w = Watcher("gcp", md.gcp_url)
        assert w.check() is None and w.error == ""
        md.preempted = True
        notice = w.check()
    assert notice is not None and notice.cloud == "gcp" and notice.grace_s == 30
    assert notice.detail == "instance/preempted: TRUE"
    assert 3 <= notice.training_grace_s() <= 20  # the rest is the final sync's


def test_gcp_host_maintenance_that_terminates_is_a_notice_a_live_migration_is_not():
    with metadata_server() as md:
        w = Watcher("gcp", md.gcp_url)
        md.maintenance_event = "MIGRATE_ON_HOST_MAINTENANCE"
        assert w.check() is None
        md.maintenance_event = "TERMINATE_ON_HOST_MAINTENANCE"
        notice = w.check()
    assert notice is not None and "TERMINATE_ON_HOST_MAINTENANCE" in notice.detail


def test_aws_instance_action_is_read_with_an_imdsv2_token_and_its_time_is_the_grace():
    with metadata_server() as md:
        w = Watcher("aws", md.aws_url)
        assert w.check() is None and w.error == ""  # 404: nothing scheduled
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 120))
        md.instance_action = {"action": "terminate", "time": when}
        notice = w.check()
        puts = [r for r in md.requests if r.startswith("PUT")]
    assert notice is not None and notice.cloud == "aws" and 110 <= notice.grace_s <= 121
    assert puts == ["PUT /latest/api/token"]  # one token, reused


def test_an_unreachable_metadata_server_is_no_notice_and_says_why():
    w = Watcher("gcp", f"http://127.0.0.1:{free_port()}/computeMetadata/v1/", timeout_s=0.5)
    assert w.check() is None
    assert w.error
