"""The README's Python API example runs as written (with its work folder moved to a temp dir)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


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
