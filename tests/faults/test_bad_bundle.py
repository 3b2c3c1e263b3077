"""Hostile bundle uploads to a real coordinator: refused with a reason, and it keeps serving.

The client is a plain control connection, as a broken or hostile CLI would open.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from dora_zmq import _control as ctl
from dora_zmq._bundle import CHUNK_BYTES, encode_chunk
from dora_zmq._transport import Channel

YAML = "nodes:\n  - id: a\n    path: /bin/true\n"  # valid: only the shipping part is wrong


@pytest.fixture
def coordinator(local_cluster, tmp_path: Path):  # type: ignore[no-untyped-def]
    cluster = local_cluster()
    cluster.coordinator("--cache-dir", str(tmp_path / "cache"))
    client = Channel.connect(cluster.address)
    try:
        yield client
    finally:
        client.close()


def _ask(client: Channel, msg: object) -> object:
    return client.request(msg, 10.0)


@pytest.mark.timeout(30)
def test_forged_bytes_are_refused_and_never_served(coordinator: Channel, tmp_path: Path) -> None:
    claimed = hashlib.sha256(b"the bundle the operator packed").hexdigest()
    forged = b"a bundle that is something else"
    assert _ask(coordinator, ctl.OfferBundle(ctl.BundleRef(claimed, len(forged)))) == ctl.BundleWanted(claimed, 0)
    reply = _ask(coordinator, ctl.BundleChunk(claimed, 0, encode_chunk(forged)))
    assert isinstance(reply, ctl.Failed) and "damaged or forged" in reply.message, reply
    started = _ask(
        coordinator,
        ctl.StartDataflow(YAML, "", str(tmp_path), None, ship="always", bundle=ctl.BundleRef(claimed, len(forged))),
    )
    assert isinstance(started, ctl.Failed) and "is not on the coordinator" in started.message, started
    assert list((tmp_path / "cache" / "coordinator").glob("*.tar.gz")) == []
    assert isinstance(_ask(coordinator, ctl.Ping()), ctl.Pong)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "msg",
    [
        ctl.OfferBundle(ctl.BundleRef("../../../etc/passwd", 10)),
        ctl.OfferBundle(ctl.BundleRef("a" * 64, 10**12)),
        ctl.OfferBundle(ctl.BundleRef("a" * 64, -1)),
        ctl.BundleChunk("a" * 64, 0, "AAAA"),  # no upload in progress
        ctl.StartDataflow(YAML, "", "/", None, ship="sometimes"),
        ctl.StartDataflow(YAML, "", "/", None, ship="always"),  # no bundle named
    ],
)
def test_nonsense_gets_a_reason(coordinator: Channel, msg: object) -> None:
    reply = _ask(coordinator, msg)
    assert isinstance(reply, ctl.Failed) and "descriptor" not in reply.message, reply
    assert isinstance(_ask(coordinator, ctl.Ping()), ctl.Pong)


@pytest.mark.timeout(30)
def test_out_of_order_and_bad_base64_chunks_end_the_upload(coordinator: Channel) -> None:
    data = b"x" * (CHUNK_BYTES + 10)
    digest = hashlib.sha256(data).hexdigest()
    assert _ask(coordinator, ctl.OfferBundle(ctl.BundleRef(digest, len(data)))) == ctl.BundleWanted(digest, 0)
    reply = _ask(coordinator, ctl.BundleChunk(digest, CHUNK_BYTES, encode_chunk(data[CHUNK_BYTES:])))
    assert isinstance(reply, ctl.Failed) and "expected 0" in reply.message, reply
    assert _ask(coordinator, ctl.OfferBundle(ctl.BundleRef(digest, len(data)))) == ctl.BundleWanted(digest, 0)
    reply = _ask(coordinator, ctl.BundleChunk(digest, 0, "!!not base64!!"))
    assert isinstance(reply, ctl.Failed) and "base64" in reply.message, reply


@pytest.mark.timeout(30)
def test_only_registered_daemons_are_served(coordinator: Channel) -> None:
    # A client that is not a daemon asking for a bundle gets nothing (the coordinator logs it).
    coordinator.send(ctl.FetchBundle("a" * 64, 0))
    assert coordinator.recv(500) is None
    assert isinstance(_ask(coordinator, ctl.Ping()), ctl.Pong)


def _upload(client: Channel, data: bytes) -> ctl.BundleRef:
    ref = ctl.BundleRef(hashlib.sha256(data).hexdigest(), len(data))
    assert _ask(client, ctl.OfferBundle(ref)) == ctl.BundleWanted(ref.digest, 0)
    for offset in range(0, len(data), CHUNK_BYTES):
        reply = _ask(client, ctl.BundleChunk(ref.digest, offset, encode_chunk(data[offset : offset + CHUNK_BYTES])))
        assert isinstance(reply, ctl.BundleWanted), reply
    return ref


@pytest.mark.timeout(60)
def test_a_hostile_archive_with_a_matching_digest_is_refused_by_the_daemon(local_cluster, tmp_path: Path) -> None:
    """A hostile client computes the right digest for its own archive: the unpacker is the guard."""
    cluster = local_cluster()
    cluster.coordinator("--cache-dir", str(tmp_path / "cache"))
    cluster.daemon("--cache-dir", str(tmp_path / "cache"))
    address = cluster.address
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        body = b"#!/bin/sh\necho pwned\n"
        info = tarfile.TarInfo("../../../../../../../../tmp/" + tmp_path.name + "-escaped.sh")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    client = Channel.connect(address)
    try:
        ref = _upload(client, buf.getvalue())
        started = _ask(client, ctl.StartDataflow(YAML, "", str(tmp_path), "evil", ship="always", bundle=ref))
        assert isinstance(started, ctl.DataflowStarted), started
        client.send(ctl.Attach(started.dataflow_id, logs=False))
        result = None
        while not isinstance(result, ctl.DataflowResult):
            got = client.recv(20_000)
            assert got is not None, "no result within 20 s"
            result = got[1]
    finally:
        client.close()
    assert not result.ok
    reason = result.failures[0].reason
    assert "could not ship the dataflow's folder" in reason and "not a clean relative path" in reason, reason
    assert not (Path("/tmp") / f"{tmp_path.name}-escaped.sh").exists()
