import pytest
import torch

# The tests use tiny tensors: one thread avoids OpenMP start-up and barrier costs that dominate
# them (and swell under load). Benchmarks, not tests, measure speed.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(params=["kernels", "python"])
def path(request):
    """Run a test through the fused CPU kernels and through the Python cells."""
    from rnnkit import kernels
    if request.param == "python":
        with kernels.disabled():
            yield request.param
    else:
        if not kernels.available():
            pytest.skip(f"fused kernels {kernels.status()}")
        yield request.param
