"""Property-based run of the whole API against its own OpenAPI document.

schemathesis generates requests from /api/schema/, valid and invalid, and
checks every answer: never a server error, and each one as documented. The app
runs in another thread (ASGI), hence the database with committed data. One
test with a subtest per operation: emptying that database is the slow part.
"""

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from tests.api.test_permissions_matrix import NO_BODY, TABLE, schema_path
from tests.conversations.conftest import visitor_writes
from tests.factories import make_account, make_group, make_operator, make_token, owner_of

EXAMPLES_PER_OPERATION = 12


# Lists and reads with query parameters.
QUERIED = {"/api/v1/status-events", "/api/v1/conversations", "/api/v1/conversations/{conversation}"}


def takes_input(row) -> bool:
    """Whether a request can be made invalid: a body, a query, or a numeric id in the path."""
    has_body = row.method in ("post", "put", "patch") and row.path not in NO_BODY
    return has_body or row.path in QUERIED or "{operator}" in row.path or "{conversation}" in row.path


OPERATIONS = [
    (row.method.upper(), schema_path(row.path), mode)
    for row in TABLE
    if row.path.startswith("/api/v1/")
    for mode in ([GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if takes_input(row) else [GenerationMode.POSITIVE])
]


def test_every_answer_is_as_documented(transactional_db, subtests):
    from chatstatus.asgi import router

    api_schema = schemathesis.openapi.from_asgi("/api/schema/", router)
    account = make_account()
    make_group(account=account, key="sales", members=[make_operator(account=account)])
    owner = owner_of(account)
    conversations = [visitor_writes(account, "Hello?", client_id=f"st{n}").conversation.id for n in range(2)]

    for method, path, mode in OPERATIONS:
        operation = api_schema[path][method]

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def answer_as_documented(case):
            # Half the cases with a real conversation: random ids only ever meet the 404. Only an id
            # generated valid is replaced, so that a negative case stays invalid where it was made so.
            path_parameters = case.path_parameters or {}
            if isinstance(path_parameters.get("conversation_id"), int) and hash(repr(case.body)) % 2 == 0:
                path_parameters["conversation_id"] = conversations[hash(repr(case.query)) % 2]
            # A fresh token each time: a generated logout may have revoked the last one.
            case.call_and_validate(
                headers={"Authorization": f"Token {make_token(owner)}"},
                # The document cannot say which e-mails are taken, which time zones
                # exist or which password is right: a well-formed request may be refused.
                excluded_checks=[positive_data_acceptance],
            )

        with subtests.test(msg=f"{method} {path} {mode}"):
            answer_as_documented()


WIDGET_OPERATIONS = [
    ("GET", "/widget/v1/{widget_key}/status"),
    ("POST", "/widget/v1/{widget_key}/messages"),
]


def test_every_widget_answer_is_as_documented(transactional_db, subtests):
    from chatstatus.asgi import router

    api_schema = schemathesis.openapi.from_asgi("/api/schema/", router)
    account = make_account()
    make_group(account=account, key="sales", members=[make_operator(account=account)])

    for method, path in WIDGET_OPERATIONS:
        operation = api_schema[path][method]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def answer_as_documented(case):
                # Half the cases with the real key: random keys only ever meet the 404.
                if case.path_parameters and hash(repr(case.body)) % 2 == 0:
                    case.path_parameters["widget_key"] = account.widget_key
                case.call_and_validate(
                    headers={"Origin": "https://shop.example"},
                    # The document cannot say which groups exist or when the
                    # message budget of this address is spent.
                    excluded_checks=[positive_data_acceptance],
                )

            with subtests.test(msg=f"{method} {path} {mode}"):
                answer_as_documented()
