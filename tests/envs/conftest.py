import pytest

from rhlab.sandbox import SandboxPool


@pytest.fixture(scope="session")
def pool():
    with SandboxPool(workers=2) as p:
        yield p
