"""Tests of remotemedia_multiprocess.pipeline.

Uses the same fixtures as tests/pipeline_test.ts: ts_written.* are written by
the TypeScript builder, py_written.* by this file (UPDATE_FIXTURES=1 rewrites
them), and validation/cases.json lists the errors both languages raise verbatim.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from remotemedia_multiprocess.pipeline import (
    Channel,
    InputChannel,
    NodeTypeInfo,
    Pipeline,
    PipelineValidationError,
    PortRef,
)

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "pipelines"
UPDATE = os.environ.get("UPDATE_FIXTURES") == "1"
RULE = 'use letters, digits, "_" and "-", starting with a letter or "_", at most 64 characters'


def build_a() -> Pipeline:
    """The pipeline of ts_written.* (the same calls as buildA() in TypeScript)."""
    return (
        Pipeline("voice assistant")
        .add_node(
            "audio.Resample",
            "resample",
            {"rate": 16000, "channels": 1, "quality": "high"},
        )
        .add_node(
            "vad.Silero",
            "vad",
            {
                "threshold": 0.25,
                "min_silence_ms": 300,
                "window": [512, 1024],
                "pad ms": -20,
            },
        )
        .add_node(
            "asr.Whisper",
            "asr",
            {
                "model": "tiny.en",
                "beams": 5,
                "prompt": 'Quotes " and \\ and\ttabs\nnewline, \x01 control; '
                "unicode: héllo 日本 🎤",
                "fp16": False,
                "extra": {"cache": {"dir": "/tmp/x", "size_mb": 512}, "empty": {}},
            },
        )
        .add_node(
            "llm.Chat",
            "llm",
            {
                "stops": [
                    {"text": "###", "keep": False},
                    {"text": "END", "keep": True},
                ],
                "temperature": 0.75,
                "nothing": [],
            },
        )
        .add_node("text.Merge", "merge")
        .add_input("audio", "resample", "in")
        .add_input("audio", "vad", "raw")
        .connect("resample", "out", "vad", "in")
        .connect("resample", "out", "asr", "in")
        .connect("vad", "events", "asr", "control")
        .connect("asr", "out", "llm", "in")
        .connect("asr", "out", "merge", "in")
        .connect("llm", "out", "merge", "in")
        .add_input("prompt", "llm", "system")
        .add_output("transcript", "asr", "out")
        .add_output("reply", "merge", "out")
        .add_output("speech_events", "vad", "events")
    )


def build_b() -> Pipeline:
    """The pipeline of py_written.* (buildB() in TypeScript reads it back)."""
    return (
        Pipeline()
        .add_node(
            "mic",
            "mic",
            {
                "device": "default",
                "gain": 2.0,
                "eps": 1.5e-07,
                "matrix": [[1, 2], [3]],
                "mixed": [1, "two", True, {"k": "v"}],
            },
        )
        .add_node("vad", "vad", {})
        .add_node("sink", "sink")
        .connect("mic", "out", "vad", "in")
        .connect("vad", "out", "sink", "in")
        .add_input("control", "mic", "control")
        .add_output("speech", "vad", "out")
        .add_output("raw", "mic", "out")
    )


def load_registry() -> dict[str, NodeTypeInfo]:
    raw = json.loads((FIXTURES / "registry.json").read_text(encoding="utf-8"))
    return raw["types"]


def check_error(
    exc: pytest.ExceptionInfo[PipelineValidationError], code: str, message: str
) -> None:
    assert exc.value.code == code
    assert str(exc.value) == message


def test_python_written_fixtures_are_exactly_what_python_writes() -> None:
    p = build_b()
    p.validate()
    if UPDATE:
        p.save(FIXTURES / "py_written.toml")
        p.save(FIXTURES / "py_written.json")
    assert (FIXTURES / "py_written.toml").read_text(encoding="utf-8") == p.to_toml()
    assert (FIXTURES / "py_written.json").read_text(encoding="utf-8") == p.to_json()
    # The float stays a float in Python.
    loaded = Pipeline.load(FIXTURES / "py_written.toml").to_dict()
    gain = loaded["nodes"][0]["config"]["gain"]
    assert isinstance(gain, float)
    assert gain == 2.0


def test_typescript_written_fixtures_load_and_python_writes_the_same_bytes() -> None:
    expected = build_a()
    for name in ("ts_written.toml", "ts_written.json"):
        p = Pipeline.load(FIXTURES / name)
        assert p.to_dict() == expected.to_dict(), name
        p.validate()
    # One schema, one layout: Python writes byte for byte what TypeScript wrote.
    assert (FIXTURES / "ts_written.toml").read_text(encoding="utf-8") == expected.to_toml()
    assert (FIXTURES / "ts_written.json").read_text(encoding="utf-8") == expected.to_json()


def test_round_trips_keep_the_definition(tmp_path: Path) -> None:
    for p in (build_a(), build_b()):
        d = p.to_dict()
        assert Pipeline.from_toml(p.to_toml()).to_dict() == d
        assert Pipeline.from_json(p.to_json()).to_dict() == d
        assert Pipeline.from_json(d).to_dict() == d
        assert Pipeline.from_dict(d).to_dict() == d
        for ext in ("json", "toml"):
            path = tmp_path / f"p.{ext}"
            p.save(path)
            assert Pipeline.load(path).to_dict() == d
            assert Pipeline.load(str(path)).to_dict() == d


def test_hand_written_toml_and_its_json_twin_load_alike() -> None:
    from_toml = Pipeline.load(FIXTURES / "hand_written.toml")
    from_json = Pipeline.load(FIXTURES / "hand_written.json")
    assert from_toml.to_dict() == from_json.to_dict()
    from_toml.validate(load_registry())
    assert from_toml.name == "hand written"


def _cases() -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "validation" / "cases.json").read_text(encoding="utf-8"))


def test_there_are_shared_cases() -> None:
    assert len(_cases()) >= 40


@pytest.mark.parametrize(
    "case", _cases(), ids=lambda c: f"{c['file']}{'+registry' if c['registry'] else ''}"
)
def test_shared_validation_case(case: dict[str, Any]) -> None:
    registry = load_registry() if case["registry"] else None

    def run() -> None:
        Pipeline.load(FIXTURES / "validation" / case["file"]).validate(registry)

    if case["code"] is None:
        run()
        return
    with pytest.raises(PipelineValidationError) as exc:
        run()
    check_error(exc, case["code"], case["message"])


def test_validation_errors_carry_the_node_id() -> None:
    p = (
        Pipeline()
        .add_node("t", "a")
        .add_node("t", "b")
        .connect("a", "out", "b", "in")
        .connect("b", "out", "a", "in")
        .add_input("x", "a", "in")
    )
    with pytest.raises(PipelineValidationError) as exc:
        p.validate()
    check_error(exc, "cycle", "Nodes form a cycle: a -> b -> a")
    assert exc.value.node_id == "a"
    q = Pipeline().add_node("t", "a").add_node("t", "lonely").add_input("x", "a", "in")
    with pytest.raises(PipelineValidationError) as exc:
        q.validate()
    check_error(
        exc,
        "unreachable_node",
        "No pipeline input reaches these nodes: lonely",
    )
    assert exc.value.node_id == "lonely"


def test_empty_registry_lists_no_types() -> None:
    p = Pipeline().add_node("constructor", "a").add_input("x", "a", "in")
    with pytest.raises(PipelineValidationError) as exc:
        p.validate({})
    check_error(
        exc,
        "unknown_node_type",
        'Node "a": type "constructor" is not in the registry (known types: none)',
    )


@pytest.mark.parametrize(
    ("call", "code", "message"),
    [
        (
            lambda p: p.add_node("t", "a b"),
            "invalid_name",
            f'"a b" is not a valid node id: {RULE}',
        ),
        (
            lambda p: p.add_node("t", "x" * 65),
            "invalid_name",
            f'"{"x" * 65}" is not a valid node id: {RULE}',
        ),
        (
            lambda p: p.add_node("t", "in"),
            "invalid_name",
            '"in" is reserved (pipeline input channels are named in.<input>)',
        ),
        (
            lambda p: p.add_node("t", "a\n"),
            "invalid_name",
            f'"a\\n" is not a valid node id: {RULE}',
        ),
        (
            lambda p: p.add_node("", "a"),
            "invalid_schema",
            "node type: must not be empty",
        ),
        (
            lambda p: p.add_node("t", 3),
            "invalid_schema",
            "node id must be a string, got a number",
        ),
        (
            lambda p: p.add_node("t", "a", {"x": {"y": [None]}}),
            "invalid_schema",
            (
                "config.x.y[0]: null is not allowed "
                "(config values are strings, numbers, booleans, arrays and tables)"
            ),
        ),
        (
            lambda p: p.add_node("t", "a", {"x": float("nan")}),
            "invalid_schema",
            "config.x: must be a finite number",
        ),
        (
            lambda p: p.add_node("t", "a", {1: "x"}),
            "invalid_schema",
            "config: key 1 must be a string",
        ),
        (
            lambda p: p.connect("a", "out", "b", "in.x"),
            "invalid_name",
            f'"in.x" is not a valid port name: {RULE}',
        ),
        (
            lambda p: p.add_input("a-b.c", "a", "in"),
            "invalid_name",
            f'"a-b.c" is not a valid input name: {RULE}',
        ),
        (
            lambda p: p.add_output("", "a", "out"),
            "invalid_name",
            f'"" is not a valid output name: {RULE}',
        ),
    ],
)
def test_builder_rejects_bad_names_and_values(call: Any, code: str, message: str) -> None:
    p = Pipeline().add_node("t", "x" * 64)
    with pytest.raises(PipelineValidationError) as exc:
        call(p)
    check_error(exc, code, message)
    assert [n["id"] for n in p.to_dict()["nodes"]] == ["x" * 64]


def test_load_errors() -> None:
    with pytest.raises(PipelineValidationError) as exc:
        Pipeline.from_json("{")
    assert exc.value.code == "invalid_schema"
    assert str(exc.value).startswith("$: invalid JSON: ")
    with pytest.raises(PipelineValidationError) as exc:
        Pipeline.from_toml('version = 1\n\n[[nodes]]\nid = "a"\ntype = \n')
    assert exc.value.code == "invalid_schema"
    assert str(exc.value).startswith("$: invalid TOML: ")
    assert "line 5" in str(exc.value)
    with pytest.raises(ValueError, match=r"use a \.json or \.toml file"):
        Pipeline.load(FIXTURES / "registry.yaml")
    with pytest.raises(ValueError, match=r"use a \.json or \.toml file"):
        build_a().save("/tmp/x.txt")
    with pytest.raises(FileNotFoundError):
        Pipeline.load(FIXTURES / "missing.toml")
    # JSON allows NaN in Python; the schema does not.
    with pytest.raises(PipelineValidationError) as exc:
        Pipeline.from_json(
            '{"version": 1, "nodes": [{"id": "a", "type": "t", "config": {"x": NaN}}]}'
        )
    check_error(
        exc,
        "invalid_schema",
        "$.nodes[0].config.x: must be a finite number",
    )


def test_definitions_are_copied_in_and_out() -> None:
    config: dict[str, Any] = {"nested": {"list": [1, 2]}}
    p = Pipeline().add_node("t", "a", config)
    config["nested"]["list"].append(3)
    d = p.to_dict()
    assert d["nodes"][0]["config"] == {"nested": {"list": [1, 2]}}
    d["nodes"][0]["config"]["nested"]["list"].append(9)
    d["nodes"].append({"id": "z", "type": "t", "config": {}})
    assert p.to_dict()["nodes"] == [
        {"id": "a", "type": "t", "config": {"nested": {"list": [1, 2]}}}
    ]
    raw = build_a().to_dict()
    q = Pipeline.from_dict(raw)
    raw["nodes"][0]["config"]["rate"] = 1
    assert q.to_dict()["nodes"][0]["config"]["rate"] == 16000


def test_missing_optional_fields_and_key_order() -> None:
    p = Pipeline.from_toml('version = 1\n\n[[nodes]]\nid = "a"\ntype = "t"\n')
    assert p.to_dict() == {
        "version": 1,
        "nodes": [{"id": "a", "type": "t", "config": {}}],
        "connections": [],
        "inputs": [],
        "outputs": [],
    }
    assert p.name is None
    assert list(build_a().to_dict()) == [
        "version",
        "name",
        "nodes",
        "connections",
        "inputs",
        "outputs",
    ]
    assert Pipeline().to_toml() == "version = 1\n"


def test_channels_fan_out_and_deno_reads() -> None:
    p = build_a()
    assert p.channels() == [
        Channel(
            "resample.out",
            PortRef("resample", "out"),
            [PortRef("vad", "in"), PortRef("asr", "in")],
            [],
            False,
        ),
        Channel(
            "vad.events",
            PortRef("vad", "events"),
            [PortRef("asr", "control")],
            ["speech_events"],
            True,
        ),
        Channel(
            "asr.out",
            PortRef("asr", "out"),
            [PortRef("llm", "in"), PortRef("merge", "in")],
            ["transcript"],
            True,
        ),
        Channel("llm.out", PortRef("llm", "out"), [PortRef("merge", "in")], [], False),
        Channel("merge.out", PortRef("merge", "out"), [], ["reply"], True),
    ]
    assert p.input_channels() == [
        InputChannel("in.audio", "audio", [PortRef("resample", "in"), PortRef("vad", "raw")]),
        InputChannel("in.prompt", "prompt", [PortRef("llm", "system")]),
    ]


def test_node_ports_match_the_runner_spec() -> None:
    p = build_a()
    assert p.node_ports("merge") == {
        "inputs": {"in": ["asr.out", "llm.out"]},
        "outputs": {"out": "merge.out"},
    }
    assert p.node_ports("vad") == {
        "inputs": {"raw": ["in.audio"], "in": ["resample.out"]},
        "outputs": {"events": "vad.events"},
    }
    with pytest.raises(PipelineValidationError) as exc:
        p.node_ports("nope")
    check_error(exc, "unknown_node", 'No node "nope"')


def test_topological_order() -> None:
    assert build_a().topological_order() == ["resample", "vad", "asr", "llm", "merge"]
    p = (
        Pipeline()
        .add_node("t", "c")
        .add_node("t", "b")
        .add_node("t", "a")
        .connect("a", "out", "b", "in")
        .connect("b", "out", "c", "in")
    )
    assert p.topological_order() == ["a", "b", "c"]
    p.connect("c", "out", "b", "in")
    assert p.topological_order() == ["a"]


def test_a_node_env_round_trips_and_must_be_a_name() -> None:
    p = Pipeline().add_node("face_detect", "d", env="mediapipe").add_node("draw_boxes", "b")
    for q in (Pipeline.from_json(p.to_json()), Pipeline.from_toml(p.to_toml())):
        assert [n.get("env") for n in q.to_dict()["nodes"]] == ["mediapipe", None]
    assert 'env = "mediapipe"' in p.to_toml()
    with pytest.raises(PipelineValidationError) as e:
        Pipeline().add_node("t", "a", env="no spaces")
    assert e.value.code == "invalid_name"
    with pytest.raises(PipelineValidationError) as e:
        Pipeline.from_dict({"version": 1, "nodes": [{"id": "a", "type": "t", "env": 3}]})
    assert e.value.code == "invalid_schema" and "env" in str(e.value)
