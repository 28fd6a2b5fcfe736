"""docs/hpc.md shows the files of examples/hpc/ exactly as they are.

A fenced block preceded by a line ``<!-- file: PATH -->`` must equal the
file at PATH (relative to the repository root) byte for byte, and every
script in examples/hpc/ that the tests run must be shown or named.
"""

from __future__ import annotations

import re

from .hpcutil import DOCS, EXAMPLES, REPO_ROOT

MARKER = re.compile(r"^<!-- file: (\S+) -->\n```(\w+)\n(.*?)^```$", re.M | re.S)


def _blocks():
    text = DOCS.read_text()
    return text, [(m.group(1), m.group(2), m.group(3)) for m in MARKER.finditer(text)]


def test_marked_blocks_equal_their_files():
    text, blocks = _blocks()
    assert blocks, f"{DOCS} has no <!-- file: ... --> blocks"
    markers = re.findall(r"<!-- file: (\S+) -->", text)
    assert len(markers) == len(blocks), "a <!-- file: --> line is not directly followed by a fenced block"
    for path, lang, body in blocks:
        target = REPO_ROOT / path
        assert target.is_file(), f"docs/hpc.md shows {path}, which does not exist"
        assert lang == {".py": "python", ".sh": "bash"}[target.suffix], f"{path} shown as {lang}"
        assert body == target.read_text(), (
            f"docs/hpc.md's copy of {path} differs from the file; paste the file again"
        )


def test_every_example_is_in_the_guide():
    text, blocks = _blocks()
    shown = {path for path, _, _ in blocks}
    for f in sorted(EXAMPLES.iterdir()):
        if f.suffix not in (".py", ".sh"):
            continue
        rel = f.relative_to(REPO_ROOT).as_posix()
        assert rel in shown or f.name in text, f"docs/hpc.md neither shows nor names {rel}"
    # The job scripts and the guide's Python scripts are shown in full.
    for name in ("submit_array.sh", "write_partition.py", "submit_finalise.sh", "finalise_store.py",
                 "mpi_write.py", "mpi_collective.py", "local_nvme_then_rsync.sh", "submit_array_cli.sh",
                 "submit_pipeline.sh", "submit_pyramid_part.sh", "submit_pyramid_publish.sh", "mpi_pyramid.py"):
        assert f"examples/hpc/{name}" in shown, f"docs/hpc.md does not show examples/hpc/{name}"


def test_python_blocks_compile():
    """Unmarked blocks are command lines; python blocks must at least compile."""
    text, _ = _blocks()
    for m in re.finditer(r"^```python\n(.*?)^```$", text, re.M | re.S):
        compile(m.group(1), "docs/hpc.md", "exec")
