"""The plugin docs keep up with the code: every hook in hookspecs.py has a heading in
docs/hooks.md with its signature, and the guide starts from `cbk new-plugin`."""

import inspect
import re
from pathlib import Path

import pytest

from codabench_kit import PROJECT_NAME
from codabench_kit.components import hookspecs

DOCS = Path(__file__).resolve().parents[1] / "docs"
HOOK_HEADING = re.compile(r"^## (\w+)\((.*)\)\s*$", re.MULTILINE)


def hookspec_names():
    """The hooks hookspecs.py specifies: the functions pluggy's marker tagged."""
    return sorted(name for name, value in vars(hookspecs).items()
                  if inspect.isfunction(value) and hasattr(value, f"{PROJECT_NAME}_spec"))


def documented_hooks():
    """``## name(args)`` headings of docs/hooks.md: name -> the argument list."""
    return dict(HOOK_HEADING.findall((DOCS / "hooks.md").read_text(encoding="utf-8")))


def test_hookspecs_are_found():
    assert {"register_cleaners", "register_augmenters", "register_backbones",
            "register_tta", "register_commands"} <= set(hookspec_names())


@pytest.mark.parametrize("name", hookspec_names())
def test_every_hook_is_documented_with_its_signature(name):
    documented = documented_hooks()
    assert name in documented, f"docs/hooks.md has no `## {name}(...)` heading"
    arguments = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    assert documented[name] == arguments, (
        f"docs/hooks.md documents {name}({documented[name]}); hookspecs.py has "
        f"{name}({arguments})")


def test_every_documented_hook_exists():
    assert sorted(documented_hooks()) == hookspec_names()


def test_every_hook_section_says_when_returns_and_shows_an_example():
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)
    for name in hookspec_names():
        section = next(s for s in sections if s.startswith(f"{name}("))
        for part in ("**When:**", "**Returns:**", "```python", "@hookimpl",
                     f"def {name}("):
            assert part in section, f"docs/hooks.md, {name}: no {part}"


def test_guide_starts_from_the_scaffold_and_links_the_reference():
    guide = (DOCS / "writing-plugins.md").read_text(encoding="utf-8")
    assert "cbk new-plugin" in guide
    for kind in ("cleaner", "augmenter", "backbone", "tta"):
        assert f"`{kind}`" in guide
    for step in ("pip install -e .", "pytest", "cbk plugins", "cbk build --plugins",
                 "twine upload"):
        assert step in guide
    assert "(hooks.md)" in guide
