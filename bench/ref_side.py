"""Times zarr-vectors 0.9.2 (the reference) on a workload; run with its venv's python.

Usage: python ref_side.py N WORKDIR REPEAT  -> prints one JSON line of timings.
"""

import json
import shutil
import sys
import time
import warnings

warnings.filterwarnings("ignore")
sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _workload import BIN, CHUNK, points  # noqa: E402
from zarr_vectors.types.points import read_points, write_points  # noqa: E402

n, workdir, repeat = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
positions, intensity = points(n)
out = {"write": [], "read_all": []}
path = f"{workdir}/ref.zarrvectors"
for _ in range(repeat):
    shutil.rmtree(path, ignore_errors=True)
    t = time.perf_counter()
    write_points(path, positions, chunk_shape=CHUNK, bin_shape=BIN, vertex_attributes={"intensity": intensity})
    out["write"].append(time.perf_counter() - t)
    t = time.perf_counter()
    r = read_points(path, attribute_names=["intensity"])
    out["read_all"].append(time.perf_counter() - t)
    assert len(r["positions"]) == n
print(json.dumps(out))
