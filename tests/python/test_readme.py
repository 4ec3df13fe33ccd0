"""The README's PyTorch training loop, run exactly as the README shows it."""
import os
import re
import subprocess
import sys

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def test_readme_training_loop(prefix):
    text = open(README).read()
    m = re.search(r"<!-- python-snippet -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README.md has no python snippet marked <!-- python-snippet -->"
    code = m.group(1)
    assert len(code.strip().splitlines()) <= 10
    env = dict(os.environ, DATA=prefix)
    r = subprocess.run([sys.executable, "-c", code + "\nprint('loss', float(loss))\n"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"^loss [0-9.e+-]+$", r.stdout, re.M), r.stdout
