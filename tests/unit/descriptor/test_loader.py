"""The positioned YAML tree: lines, scalar texts, duplicate keys, merges and syntax errors."""

from __future__ import annotations

import textwrap

from dora_zmq.descriptor._loader import YMap, YScalar, YSeq, load_tree, to_plain
from dora_zmq.descriptor._problems import Problems


def _load(text: str) -> tuple[object, Problems]:
    problems = Problems("flow.yml")
    return load_tree(textwrap.dedent(text), problems), problems


def test_scalars_keep_value_text_and_line() -> None:
    tree, problems = _load("""\
        a: 1.50
        b: "007"
        c: true
        """)
    assert not problems.errors
    assert isinstance(tree, YMap)
    a = tree.entries["a"].value
    assert isinstance(a, YScalar)
    assert (a.value, a.text, a.line) == (1.5, "1.50", 1)
    b = tree.entries["b"].value
    assert isinstance(b, YScalar) and (b.value, b.text, b.line) == ("007", "007", 2)
    c = tree.entries["c"].value
    assert isinstance(c, YScalar) and c.value is True and c.text == "true"


def test_sequences_and_plain_value() -> None:
    tree, problems = _load("nodes:\n  - 1\n  - {x: [a, ~]}\n")
    assert not problems.errors
    assert isinstance(tree, YMap)
    seq = tree.entries["nodes"].value
    assert isinstance(seq, YSeq) and seq.line == 2 and len(seq.items) == 2
    assert to_plain(tree) == {"nodes": [1, {"x": ["a", None]}]}


def test_duplicate_key_reports_both_lines() -> None:
    _, problems = _load("""\
        nodes:
          - id: a
            env:
              X: 1
              Y: 2
              X: 3
        """)
    [err] = problems.errors
    assert err.line == 6
    assert err.node == "a"
    assert err.field == "env.X"
    assert "duplicate key 'X' (first at line 4, again at line 6)" in err.message
    assert err.hint


def test_duplicate_top_level_key() -> None:
    _, problems = _load("nodes: []\nnodes: []\n")
    [err] = problems.errors
    assert err.field == "nodes" and err.node is None and err.line == 2


def test_merge_key_lets_explicit_keys_win_without_duplicate_error() -> None:
    tree, problems = _load("""\
        base: &base {a: 1, b: 2}
        derived:
          <<: *base
          b: 3
        """)
    assert not problems.errors
    assert to_plain(tree)["derived"] == {"a": 1, "b": 3}  # type: ignore[index]


def test_alias_problem_reported_once() -> None:
    _, problems = _load("a: &x {k: 1, k: 2}\nb: *x\nc: *x\n")
    [err] = problems.errors
    assert err.field == "a.k"


def test_recursive_alias_is_an_error_not_a_hang() -> None:
    tree, problems = _load("a: &x [1, *x]\n")
    assert tree is not None
    assert any("recursive YAML alias" in e.message for e in problems.errors)


def test_syntax_error_has_line_and_no_tree() -> None:
    tree, problems = _load("nodes:\n  - id: a\n    path: x: y\n")
    assert tree is None
    [err] = problems.errors
    assert err.line == 3 and err.file == "flow.yml"
    assert err.message.startswith("invalid YAML")


def test_empty_text_is_reported() -> None:
    tree, problems = _load("# only a comment\n")
    assert tree is None
    assert "empty" in problems.errors[0].message


def test_unknown_tag_is_reported() -> None:
    _, problems = _load("a: !!python/name:os.system x\n")
    assert any("unsupported YAML value" in e.message for e in problems.errors)
