"""zvf validate on an S3 store (moto on 127.0.0.1): clean after finalisation,
a pending partition is a warning, a lost cell is an error with its key, from
Python and from the CLI (exit 5)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from .s3util import BUCKET, cloud

CHUNK = (250.0, 250.0, 250.0)
BIN = (125.0, 125.0, 125.0)


def _cli(*args):
    exe = shutil.which("zvf") or str(Path(sys.executable).with_name("zvf"))
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_validate_on_s3(zv, s3_url, s3_prefix, boto):
    from zarr_vectors.validate import validate

    positions, intensity = cloud(6_000, 11)
    for lo, hi in ((0.0, 600.0), (600.0, 1000.0)):
        m = (positions[:, 2] >= lo) & (positions[:, 2] < hi)
        zv.write_points_partition(s3_url, positions[m], chunk_shape=CHUNK, bin_shape=BIN,
                                  attributes={"intensity": intensity[m]}, z_range=(lo, hi))
    assert not validate(s3_url).ok, "partitions only: not finalised"
    zv.finalise(s3_url)
    clean = validate(s3_url, level=5)
    assert clean.ok and clean.findings == [], clean.summary()

    # A killed re-run leaves started.json without a manifest: a warning, still valid.
    boto.put_object(Bucket=BUCKET, Key=f"{s3_prefix}/.zvf/partitions/z_0_600/started.json",
                    Body=json.dumps({"id": "z_0_600", "run_id": "feedfacefeedface",
                                     "range": [[None, None, 0.0], [None, None, 600.0]]}).encode())
    pending = validate(s3_url)
    assert pending.ok and any("is pending" in w for w in pending.warnings), pending.summary()

    victim = "0/vertices/c/1/1/1"
    boto.delete_object(Bucket=BUCKET, Key=f"{s3_prefix}/{victim}")
    broken = validate(s3_url)
    assert not broken.ok
    assert [f.key for f in broken.findings if f.severity == "error"] == [victim], broken.summary()
    proc = _cli("validate", s3_url, "--json")
    assert proc.returncode == 5, proc.stderr
    assert json.loads(proc.stdout)["findings"] == broken.to_dict()["findings"]
