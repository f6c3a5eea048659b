"""Lint targets: the two ranges, one TensorRT release, an installed version, and what a build
and the parser's error say with them."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from edge.cli import build_parser, main
from edge.errors import ConfigError
from edge.export.lint import lint_model, parser_hint
from edge.export.trt_versions import Target, installed_target, operator_table, resolve_target
from tests.conftest import IR_VERSION


def attention_model(path: Path | None = None, *, opset: int = 23) -> onnx.ModelProto:
    """Attention (10.14) beside a custom op; 4-D query, key and value."""
    qkv = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2, 4, 8]) for n in "qkv"]
    nodes = [
        helper.make_node("Attention", ["q", "k", "v"], ["a"], name="attn"),
        helper.make_node("Fused", ["a"], ["y"], domain="edge.plugins", name="custom"),
    ]
    graph = helper.make_graph(nodes, "g", qkv, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("edge.plugins", 1)],
        ir_version=IR_VERSION,
    )
    if path is not None:
        onnx.save(m, path)
    return m


def test_targets_resolve_to_a_range_or_one_release() -> None:
    assert [resolve_target(t) for t in ("trt10", "trt11", "10.13", "10.13.3.9", "11.5.0")] == [
        "trt10",
        "trt11",
        "10.13",
        "10.13",
        "11.5",
    ]
    with pytest.raises(ConfigError, match=r"lint target 'trt9' is unknown; choose trt10, trt11 or a Ten"):
        resolve_target("trt9")
    with pytest.raises(ConfigError, match=r"10.17 is not in .* knows TensorRT 10.0 to 10.16 and 11.0"):
        resolve_target("10.17")
    with pytest.raises(ConfigError, match="TensorRT 8.6.1 is not in the lint's table"):
        resolve_target("8.6.1")


def test_an_installed_version_is_linted_as_its_release_or_the_newest_known() -> None:
    assert installed_target("10.3.0.30") == "10.3"
    assert installed_target("10.17.1") == "10.16"  # newer than the table: its major's newest
    assert installed_target("11.9") == "11.5"
    assert installed_target("8.6.1") is None and installed_target("12.0") is None
    assert installed_target("a TensorRT") is None


def test_one_release_says_what_it_lacks_as_an_error() -> None:
    """A release is a range of one: what a later one added is an error, not a warning."""
    m = attention_model()
    for target, expected in (("10.13", ["error"]), ("10.14", []), ("10.14.1.48", []), ("trt11", [])):
        assert [f.level for f in lint_model(m, target=target) if f.op == "Attention"] == expected, target
    (found,) = [f for f in lint_model(m, target="10.13") if f.op == "Attention"]
    assert found.message.endswith("TensorRT 10.14 and later parse it; the target is 10.13")
    assert Target.of("10.13.3").versions == "10.13" and Target.of("10.13").described == "the target is 10.13"


def test_releases_and_documented_opsets_agree_with_the_targets() -> None:
    table = operator_table()
    releases = table["releases"]
    keys = [tuple(map(int, r.split("."))) for r in releases]
    assert keys == sorted(keys) and len(set(releases)) == len(releases)
    for spec in table["targets"].values():
        assert spec["tensorrt"] in releases and spec["newest"] in releases
    documented = [d["tensorrt"] for d in table["opsets"]["documented"]]
    assert documented[0] == releases[0] and set(documented) <= set(releases)
    maxima = [d["max"] for d in table["opsets"]["documented"]]
    assert maxima == sorted(maxima)


def test_parser_hint_names_what_the_installed_parser_lacks(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    attention_model(path)
    hint = parser_hint(path, "10.13.3.9")
    assert hint.startswith(" (edge lint --target 10.13 finds: Attention 'attn': not in 10.1's")
    assert "custom" not in hint and "edge.plugins" not in hint  # the build loads plugin libraries
    assert parser_hint(path, "10.14.1") == "" and parser_hint(path, "8.6.1") == ""
    many = helper.make_graph(
        [helper.make_node("Unique", ["x"], [f"u{i}"], name=f"u{i}") for i in range(7)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info(f"u{i}", TensorProto.FLOAT, None) for i in range(7)],
    )
    opset = [helper.make_opsetid("", 18)]
    onnx.save(helper.make_model(many, opset_imports=opset, ir_version=IR_VERSION), path)
    hint = parser_hint(path, "11.2")
    assert hint.count("Unique '") == 5 and hint.endswith(" and 2 more)")


def test_cli_lints_against_one_release(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge.schemas import check_document

    path = tmp_path / "m.onnx"
    attention_model(path)
    plugin = ["--plugin", "edge.plugins::Fused"]
    assert main(["lint", str(path), "--target", "10.13.3", *plugin]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == f"{path}: 10.13: 1 errors, 1 warnings"  # and opset 23
    assert main(["lint", str(path), "--target", "10.14", "--json", *plugin]) == 0
    text = capsys.readouterr().out
    assert check_document("lint", text) is None
    (report,) = json.loads(text)["models"]
    assert (report["target"], report["tensorrt"], report["errors"]) == ("10.14", "10.14", 0)
    assert main(["lint", str(path), "--target", "10.99"]) == 2
    assert "TensorRT 10.99 is not in the lint's table" in capsys.readouterr().err


def test_lint_help_names_the_tables_releases() -> None:
    table = operator_table()
    by_major: dict[str, list[str]] = {}
    for release in table["releases"]:
        by_major.setdefault(release.split(".")[0], []).append(release)
    lint = build_parser()._subparsers._group_actions[0].choices["lint"]  # type: ignore[union-attr]
    help_text = " ".join(lint.format_help().split())
    assert " or ".join(f"{r[0]} to {r[-1]}" for r in by_major.values()) in help_text
    spec = table["targets"]
    assert f"TensorRT {spec['trt10']['tensorrt']}, JetPack 6's" in help_text
    assert f"TensorRT {spec['trt11']['tensorrt']} to {spec['trt11']['newest']}" in help_text


def test_a_tensorrt_build_records_its_releases_lint(tiny_engines: Path) -> None:
    """The build lints for both ranges and, building with TensorRT, for the installed release:
    the manifest's lint, valid against its schema, carries it."""
    import jsonschema

    from edge.build import _lint
    from edge.schema_manifest import _lint as manifest_lint_schema

    onnx_path = next(tiny_engines.glob("depth_tiny*_fp32.onnx"))
    lint = _lint(onnx_path, tensorrt="10.13.3.9")
    assert set(lint) == {"trt10", "trt11", "10.13"} and lint["10.13"]["errors"] == 0
    assert set(_lint(onnx_path, tensorrt="8.6.1")) == set(_lint(onnx_path)) == {"trt10", "trt11"}
    lint_schema = manifest_lint_schema()
    jsonschema.validate(lint, lint_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**lint, "trt12": lint["trt10"]}, lint_schema)
