#!/usr/bin/env python3
"""Write fixtures/retrieval/ann-euclidean-500x16.hdf5 with h5py, the way ann-benchmarks
writes its data sets: root attributes type, distance, dimension, point_type; datasets
train (float32), test (float32), neighbors (int64, nearest first) and distances (float64).

The tests read this file to prove that files written by the real HDF5 library (not only by
inferbench's own writer) are read correctly. Rerun it only to change the fixture:

    scripts/ann-fixture.py

h5py and numpy are pinned and installed from PyPI into target/h5py-venv on first use.
"""

import os
import subprocess
import sys

H5PY = "h5py==3.12.1"
NUMPY = "numpy==2.2.6"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "target", "h5py-venv")
OUT = os.path.join(ROOT, "fixtures", "retrieval", "ann-euclidean-500x16.hdf5")


def in_venv():
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(os.path.join(VENV, ".installed")):
        print(f"installing {H5PY} and {NUMPY} into {VENV} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run(pip + [NUMPY, H5PY], check=True)
        open(os.path.join(VENV, ".installed"), "w").close()
    os.execv(python, [python] + sys.argv)


def main():
    in_venv()
    import h5py
    import numpy as np

    rng = np.random.default_rng(7)
    # Eight clusters, so neighbours mean something; 20 queries from the same mixture.
    centres = rng.uniform(0, 1, size=(8, 16))
    train = (centres[rng.integers(0, 8, 500)] + rng.normal(0, 0.1, (500, 16))).astype(np.float32)
    test = (centres[rng.integers(0, 8, 20)] + rng.normal(0, 0.1, (20, 16))).astype(np.float32)
    d = np.sqrt(((test[:, None, :].astype(np.float64) - train[None, :, :]) ** 2).sum(-1))
    count = 50
    neighbors = np.argsort(d, axis=1, kind="stable")[:, :count]
    with h5py.File(OUT, "w") as f:
        f.attrs["type"] = "dense"
        f.attrs["distance"] = "euclidean"
        f.attrs["dimension"] = train.shape[1]
        f.attrs["point_type"] = "float"
        f.create_dataset("train", data=train)
        f.create_dataset("test", data=test)
        f.create_dataset("neighbors", data=neighbors.astype(np.int64))
        f.create_dataset("distances", data=np.take_along_axis(d, neighbors, axis=1))
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
