"""deid.ct: numpy volumes in and out of libdeid, and face removal on the generated head
phantoms (tests/generators/make_head_phantom.py, low resolution): the face method changes at
least 95% of the face-feature voxels and no brain voxel, in HU and uncalibrated CBCT, for
axial, coronal and sagittal acquisitions."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from deid import DeidError
from deid.ct import Geometry, Volume

GENERATORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                          "tests", "generators")


def phantom_module():
    sys.path.insert(0, os.path.abspath(GENERATORS))
    try:
        import make_head_phantom  # type: ignore
    except ImportError as exc:  # the generator is not in this tree (installed package)
        pytest.skip(f"head phantom generator unavailable: {exc}")
    return make_head_phantom


def test_numpy_round_trip_and_geometry() -> None:
    a = np.arange(2 * 3 * 4, dtype=np.int32).reshape(2, 3, 4) - 1024
    g = Geometry((0.5, 0.6, 2.0), (1.0, 2.0, 3.0), ((0, 1, 0), (0, 0, -1), (1, 0, 0)))
    with Volume.from_numpy(a, g, slope=1.0, intercept=-1024.0, hounsfield=True) as v:
        assert v.array.shape == (2, 3, 4)
        assert np.array_equal(v.array, a)
        assert v.geometry.spacing == (0.5, 0.6, 2.0)
        assert v.geometry.direction[1] == (0.0, 0.0, -1.0)
        assert v.rescale == (1.0, -1024.0) and v.hounsfield
        view = v.copy().array  # the view keeps its copy alive
        v.array[0, 0, 0] = 7
        assert view[0, 0, 0] == a[0, 0, 0]
    with pytest.raises(DeidError):
        Volume.from_numpy(a, Geometry((0.0, 1.0, 1.0)))  # spacing must be > 0


@pytest.mark.parametrize("scale", ["hu", "cbct"])
@pytest.mark.parametrize("orientation", ["axial", "coronal", "sagittal"])
def test_face_removed_brain_untouched(scale: str, orientation: str) -> None:
    hp = phantom_module()
    ph = hp.make_phantom(size="low", scale=scale, orientation=orientation, seed=3)
    d = ph.geometry["direction"]
    geom = Geometry(tuple(ph.geometry["spacing"]), tuple(ph.geometry["origin"]),
                    (tuple(d[0:3]), tuple(d[3:6]), tuple(d[6:9])))
    with Volume.from_numpy(ph.volume.astype(np.int32), geom, slope=ph.mapping["slope"],
                           intercept=ph.mapping["intercept"],
                           hounsfield=ph.mapping["hounsfield"]) as v:
        rep = v.deface("face", mask=True)
        changed = v.array != ph.volume.astype(np.int32)
    face, brain = ph.masks["face"] > 0, ph.masks["brain"] > 0
    assert rep.face_found
    assert (changed & face).sum() >= 0.95 * face.sum()
    assert not (changed & brain).any()
    assert np.array_equal(rep.mask > 0, changed | (rep.mask > 0))  # every change is in the mask
    assert rep.altered == int(changed.sum())
