"""The README's Python example runs as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / 'README.md'


def test_readme_python_blocks_run():
    blocks = re.findall(r'```python\n(.*?)```', README.read_text(), re.S)
    assert blocks, 'README has no python example'
    for block in blocks:
        exec(compile(block, str(README), 'exec'), {})


def test_readme_opens_with_the_two_commands():
    bash = re.findall(r'```bash\n(.*?)```', README.read_text(), re.S)
    assert 'ddl-gnn demo' in bash[0]
    assert 'pytest' in bash[1]
    ci = (README.parent / '.ci' / 'run').read_text().strip().splitlines()
    assert ci[-1] == bash[1].strip()
