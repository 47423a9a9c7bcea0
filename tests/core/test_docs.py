"""docs/writing-a-provider.md cannot drift from the example package that CI installs and tests.

A code block whose first line is ``# <path>`` is that file from the repository root, byte for
byte; ``# <path> (excerpt)`` is a run of whole lines of it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from avatarkit.options import CORE_OPTIONS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "writing-a-provider.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
HEADER = re.compile(r"^# (?P<path>[\w./-]+)(?P<excerpt> \(excerpt\))?$")
CHECKED = ("python", "toml")  # every block in these languages must name its file


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def _blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(_text())]


def _prose() -> str:
    return FENCE.sub("", _text())


def test_the_doc_quotes_the_example_package() -> None:
    headers = [HEADER.match(body.partition("\n")[0]) for _, body in _blocks()]
    quoted = {h.group("path") for h in headers if h is not None}
    package = "examples/avatarkit-myavatar/src/myavatar_avatarkit"
    assert {f"{package}/{m}.py" for m in ("plugin", "options", "provider")} <= quoted


@pytest.mark.parametrize(
    ("lang", "body"),
    [b for b in _blocks() if b[0] in CHECKED],
    ids=lambda v: v.partition("\n")[0].removeprefix("# ").replace("/", "."),
)
def test_each_code_block_is_the_file_it_names(lang: str, body: str) -> None:
    first, _, code = body.partition("\n")
    header = HEADER.match(first)
    assert header, (
        f"{DOC.name}: a ```{lang} block starts with {first!r}; start it with '# <path>' or "
        "'# <path> (excerpt)' naming the file it shows, so CI can check it"
    )
    path = ROOT / header.group("path")
    assert path.is_file(), f"{DOC.name} quotes {header.group('path')}, which does not exist"
    actual = path.read_text(encoding="utf-8")
    if header.group("excerpt"):
        assert f"\n{code}" in f"\n{actual}", (
            f"{DOC.name}: an excerpt of {header.group('path')} no longer matches the file; "
            "copy the lines from the file into the doc"
        )
    else:
        assert code == actual, (
            f"{DOC.name}: the block for {header.group('path')} differs from the file; "
            "paste the file's contents into the doc"
        )


def test_the_core_options_listed_are_core_options() -> None:
    section = re.search(r"<!-- core-options\b.*?-->\n(.*?)<!-- /core-options -->", _text(), re.S)
    assert section, f"{DOC.name} lost its <!-- core-options --> list"
    listed = tuple(re.findall(r"^- `(\w+)`", section.group(1), re.M))
    assert listed == CORE_OPTIONS, (
        f"{DOC.name} lists the core options {listed}, but avatarkit.options.CoreOptions has "
        f"{CORE_OPTIONS}: update the list, in that order"
    )


def test_the_paths_the_doc_mentions_exist() -> None:
    prose = _prose()
    mentioned = set(re.findall(r"`([\w.-]+/[\w./-]*)`", prose))
    mentioned |= {
        str((DOC.parent / link).resolve().relative_to(ROOT))
        for link in re.findall(r"\]\(([^):#]+)\)", prose)
    }
    assert mentioned  # the pattern still finds them
    missing = sorted(p for p in mentioned if not (ROOT / p).exists())
    assert not missing, f"{DOC.name} mentions {missing}, which do not exist in the repository"
