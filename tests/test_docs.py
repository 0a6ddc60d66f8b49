"""README.md and docs/: links resolve inside the repository, every code block is run or accounted for,
YAML examples are valid configs, and docs/configuration.md names every key and flag (no model files)."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import subprocess
import sys
from urllib.parse import urlparse

import pytest
import yaml
from docblocks import ROOT, all_blocks, anchors, links, pages

BLOCKS = all_blocks()


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_links_stay_in_the_repository_or_are_public(page):
    for target in links(page):
        url = urlparse(target)
        if url.scheme:
            assert url.scheme == "https" or url.scheme == "http", f"{page.name}: {target}"
            assert url.hostname not in (None, "localhost", "127.0.0.1", "0.0.0.0"), f"{page.name}: {target}"
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        assert dest.is_relative_to(ROOT), f"{page.name}: {target} points outside the repository"
        assert dest.exists(), f"{page.name}: {target} does not exist"
        if anchor and dest.suffix == ".md":
            assert anchor in anchors(dest), f"{page.name}: no heading #{anchor} in {dest.name}"


@pytest.mark.parametrize("page", [p for p in pages() if "dev" not in p.parts], ids=lambda p: p.name)
def test_user_pages_do_not_point_at_files_a_clone_lacks(page):
    assert "../shared" not in page.read_text(encoding="utf-8")


def test_every_code_block_is_run_or_accounted_for():
    langs = {b.lang for b in BLOCKS}
    assert "" not in langs, [b.id for b in BLOCKS if not b.lang]  # say what a block is: text, bash, ...
    for block in BLOCKS:
        if block.covered_by:
            file, _, name = block.covered_by.partition("::")
            test_file = ROOT / file
            assert test_file.is_file(), f"{block.id}: {file} does not exist"
            assert f"def {name}(" in test_file.read_text(encoding="utf-8"), f"{block.id}: no test {name} in {file}"
    assert sum(b.runs for b in BLOCKS) >= 10  # most examples really run (tests/test_doc_blocks.py)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "python"], ids=lambda b: b.id)
def test_python_blocks_parse(block):
    ast.parse(block.code, filename=block.id)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "bash"], ids=lambda b: b.id)
def test_bash_blocks_parse(block):
    proc = subprocess.run(["bash", "-n"], input=block.code, text=True, capture_output=True)
    assert proc.returncode == 0, f"{block.id}: {proc.stderr}"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "yaml"], ids=lambda b: b.id)
def test_yaml_blocks_are_valid_configs(block):
    from ocrflow import config

    doc = yaml.safe_load(block.code)
    assert isinstance(doc, dict), block.id
    if "Pipeline" in doc or "Global" in doc:
        config.parse_yaml(block.code, block.id)  # raises ConfigError naming a bad key
    if "Serving" in doc and importlib.util.find_spec("fastapi"):
        from ocrflow.serving.cli import build_parser, resolve_settings

        resolve_settings(build_parser().parse_args([]), doc["Serving"])


def _parsers():
    from ocrflow import cli
    from ocrflow.eval import cli as eval_cli
    from ocrflow.models import cli as models_cli
    from ocrflow.serving import cli as serve_cli

    parsers = [cli.build_parser(), serve_cli.build_parser(), models_cli.build_parser(), eval_cli.build_parser()]
    if importlib.util.find_spec("torch"):
        from ocrflow.train import cli as train_cli

        parsers.append(train_cli.build_parser())
    return parsers


def _options(parser):
    for action in parser._actions:
        yield from (s for s in action.option_strings if s.startswith("--"))
        if isinstance(action.choices, dict):  # sub-commands
            for sub in action.choices.values():
                yield from _options(sub)


def test_configuration_reference_names_every_key_and_flag():
    """docs/configuration.md is generated (tools/gen_docs.py): after a new setting or flag, re-run it."""
    from ocrflow import config
    from ocrflow.det import DetParams
    from ocrflow.limits import Limits
    from ocrflow.serving.settings import ServeSettings

    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    hint = "docs/configuration.md is out of date: run python tools/gen_docs.py"
    for cls in (config.PipelineConfig, DetParams, Limits, ServeSettings):
        for f in dataclasses.fields(cls):
            if f.name not in ("det", "limits", "input"):
                assert f"`{f.name}`" in text, f"{hint} ({cls.__name__}.{f.name})"
    for alias in config.ALIASES:
        assert f"`{alias}`" in text, f"{hint} (alias {alias})"
    for parser in _parsers():
        for option in _options(parser):
            assert option in text, f"{hint} ({parser.prog} {option})"


def test_every_use_hpip_knob_is_documented():
    from ocrflow.engine import hpip

    text = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    for knob in hpip.KNOBS:
        assert f"| `{knob}` |" in text, f"docs/performance.md's table of use_hpip knobs lacks {knob}"


def test_generator_runs():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_docs.py"), "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
