"""docs/guide.md's Python blocks run as written, in order, on a CPU."""
import linecache
import re
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"


def test_guide_blocks_run_in_order(capsys):
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 6
    namespace: dict = {}
    for i, block in enumerate(blocks):
        name = f"<docs/guide.md block {i}>"
        linecache.cache[name] = (len(block), None, block.splitlines(keepends=True), name)
        exec(compile(block, name, "exec"), namespace)
    out = capsys.readouterr().out
    assert "'features.0.weight'" in out and "features.1.running_mean" in out
    accuracy = namespace["accuracy"](namespace["model"], namespace["x_test"], namespace["y_test"])
    assert accuracy > 0.5  # four epochs on 500 digits: far above chance (10%)
    assert namespace["logits"].shape == (4, 10)


def test_readme_links_the_guide():
    readme = (GUIDE.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "(docs/guide.md)" in readme
