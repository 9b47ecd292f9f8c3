import pytest

from rhlab.sandbox import SandboxPool


@pytest.fixture(scope="session")
def pool():
    with SandboxPool(workers=2) as p:
        yield p


# The fixture project is a user's task directory for `rhlab audit --command`, not part of this suite.
collect_ignore = ["fixtures"]
