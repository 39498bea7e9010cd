"""Loss tests run tiny tensors: one intra-op thread avoids OpenMP hand-off costs that dominate (and, on a
shared 2-core machine, multiply by 50) the run time of such small ops. Restored after each test."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
