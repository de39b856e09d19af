"""The README is part of the product: its configuration table lists every setting, and its quick start is two commands."""

from pathlib import Path

from api.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented():
    missing = [f"JIANSHEN_{name.upper()}" for name in Settings.model_fields if f"`JIANSHEN_{name.upper()}`" not in README]
    assert missing == []


def test_quick_start_is_exactly_two_commands():
    block = README.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    assert [line for line in block.strip().splitlines()] == ["make demo", "make test"]
