import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread is several times faster than oversubscription."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
