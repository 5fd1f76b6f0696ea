import pytest

from tests.factories import make_account, make_operator, owner_of


@pytest.fixture
def account(db):
    return make_account(name="Shop")


@pytest.fixture
def owner(account):
    return owner_of(account)


@pytest.fixture
def agent(account):
    return make_operator(account=account, name="Alena Agentová")


@pytest.fixture
def other_account(db):
    return make_account(name="Elsewhere")
