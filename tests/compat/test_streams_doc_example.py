"""The pipeline of degirum_tools' docs runs unchanged on dora_zmq but for its import line,
and prints exactly what it prints on degirum_tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from .streams_refs import HERE, LATEST, finish, ours, reference

pytestmark = pytest.mark.timeout(180)

EXAMPLE = HERE / "streams_doc_example.py"
THEIR_IMPORT = "import degirum_tools.streams as streams\n"
OUR_IMPORT = "import dora_zmq.streams as streams\n"


def test_doc_pipeline_prints_the_same(reference_python: Path, tmp_path: Path) -> None:
    ref = reference(LATEST)
    assert ref is not None
    source = EXAMPLE.read_text()
    assert source.count(THEIR_IMPORT) == 1
    ported = tmp_path / "ported_example.py"
    ported.write_text(source.replace(THEIR_IMPORT, OUR_IMPORT))
    theirs_proc, ours_proc = ref.run(EXAMPLE), ours().run(ported)
    theirs, mine = finish(theirs_proc, f"{ref.label}: {EXAMPLE.name}"), finish(ours_proc, f"dora_zmq: {EXAMPLE.name}")
    assert "frame 5 " in theirs  # the reference really ran the whole pipeline
    assert mine == theirs
