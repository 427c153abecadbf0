import pytest
import torch

# The tests use tiny tensors: one thread avoids OpenMP start-up and barrier costs that dominate
# them (and swell under load). Benchmarks, not tests, measure speed.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
