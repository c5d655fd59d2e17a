"""The README's Python examples run as written (documentation that cannot rot silently)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_example_runs(i):
    # a fresh interpreter: the examples enable x64 themselves and must not depend on test config
    r = subprocess.run([sys.executable, "-c", BLOCKS[i]], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
