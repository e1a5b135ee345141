"""Shared test set-up: hypothesis profiles and the device the suite runs on.

Profiles: "ci" (derandomized, used when $CI is set, as in .ci/run) and "dev" (random).
Set MINITF_TEST_DEVICE=cuda to run the device-aware tests on CuPy; without a GPU they skip.
"""
import os

# Tests use small arrays, for which BLAS threads cost more than they give (and they fight
# over the cores when CI runs other work); set before NumPy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("dev", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=400, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])  # HYPOTHESIS_PROFILE=thorough
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def _cuda_available() -> bool:
    try:
        from minitf import backend
        backend.cupy()
        return True
    except Exception:
        return False


DEVICE = os.environ.get("MINITF_TEST_DEVICE", "cpu")


@pytest.fixture(scope="session")
def device() -> str:
    """The device under test; skips the test when it is CUDA and no usable GPU is present."""
    if DEVICE.startswith("cuda") and not _cuda_available():
        pytest.skip("MINITF_TEST_DEVICE=cuda but CuPy or a GPU is not available")
    return DEVICE


requires_cuda = pytest.mark.skipif(not _cuda_available(), reason="needs CuPy and a CUDA GPU")

from fake_gpu import fake_gpu  # noqa: E402, F401 (the fixture, for every test: a NumPy stand-in for CuPy)
