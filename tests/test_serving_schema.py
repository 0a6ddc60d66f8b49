"""Property-based tests from the app's own OpenAPI schema (schemathesis): whatever a client sends,
the answer is never a 500, and it matches the documented status codes and envelopes."""

from __future__ import annotations

import pytest
from test_serving_support import connect_spy, shared_server  # noqa: F401  (fixture)

from ocrflow.serving.app import create_app
from ocrflow.serving.schema import EXAMPLE_PNG
from ocrflow.serving.settings import ServeSettings

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


# The schema does not depend on the pipeline: read it from an app without one.
schema = schemathesis.openapi.from_dict(create_app(object(), ServeSettings()).openapi())


@pytest.fixture
def live(pipeline, connect_spy):  # noqa: F811  the spy: generated URLs never leave loopback
    return shared_server(pipeline)


def test_schema_served_is_the_one_tested(live):
    import requests

    assert requests.get(f"{live.url}/openapi.json", timeout=10).json() == schema.raw_schema


@schema.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_never_fails_on_its_own(case, live):
    case.call_and_validate(base_url=live.url, checks=CHECKS, timeout=60)


@given(side=st.integers(min_value=1, max_value=5000), file_type=st.sampled_from([1, None]))
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_any_max_long_side_works(live, side, file_type):
    """The documented example (a tiny PNG) with any maxLongSide: always a 200 with the envelope."""
    import requests

    payload = {"file": EXAMPLE_PNG if file_type else "data:image/png;base64," + EXAMPLE_PNG,
               "inferenceParams": {"maxLongSide": side}}
    if file_type:
        payload["fileType"] = file_type
    resp = requests.post(f"{live.url}/ocr", json=payload, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.json()["result"]["dataInfo"] == {"width": 40, "height": 16, "type": "image"}
