"""The README stays a five-minute read whose Python API example runs as written, and every relative
link in it and in docs/ leads to a file (and heading) that exists."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

_FENCED = re.compile(r"^(```|~~~).*?^\1", flags=re.S | re.M)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_readme_custom_objective_example_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(block for block in blocks if "run_pipeline" in block)
    code = example.replace('"/tmp/hpogrow-example"', repr(str(tmp_path / "work")))
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    last_line = output.getvalue().strip().splitlines()[-1]
    assert last_line.endswith("wave-regression-w16/base#" + last_line.rsplit("#", 1)[1])
    assert (tmp_path / "work" / "hpogrow.db").exists()


def test_readme_is_a_five_minute_read():
    assert README.stat().st_size <= 12_288, f"README.md is {README.stat().st_size} bytes; move detail to docs/"


def test_readme_keeps_the_commands_ci_runs():
    text = README.read_text()
    sections = dict(re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M))
    assert 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]"' in sections["Set up and run"]
    assert "hpogrow search --base-width 128" in sections["Set up and run"]
    assert "python -m pytest" in sections["Run the tests"]


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces to hyphens,
    repeats numbered."""
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#* *$", _FENCED.sub("", page.read_text()), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        candidate, repeat = slug, 0
        while candidate in anchors:
            repeat += 1
            candidate = f"{slug}-{repeat}"
        anchors.add(candidate)
    return anchors


def _relative_links(page: Path) -> list[str]:
    text = _CODE_SPAN.sub("code", _FENCED.sub("", page.read_text()))
    return [target for target in _LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def test_relative_links_resolve():
    assert len(PAGES) > 1, "docs/ has no pages"
    broken = []
    for page in PAGES:
        for target in _relative_links(page):
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_every_docs_page_is_linked_from_the_readme_or_the_docs_index():
    linked = {(page.parent / target.partition("#")[0]).resolve()
              for page in (README, ROOT / "docs" / "README.md") for target in _relative_links(page)}
    unlinked = [page.name for page in PAGES[1:] if page.resolve() not in linked and page.name != "README.md"]
    assert not unlinked, f"docs pages nobody links to: {unlinked}"
