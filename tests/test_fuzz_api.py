"""The whole OpenAPI schema fuzzed against a real server (schemathesis: valid and invalid bodies, parameters and
headers built from the schema, a fixed seed), on SQLite and on PostgreSQL: no answer may be a 5xx. Integers past
the database's range, ragged pixel arrays, corrupt images, NUL in text and NaN in configs each gave 500s once.

Left out: the operations that start background work (training and fine-tuning jobs, evaluations, weight
downloads); their request bodies are fuzzed through the same schemas' validation elsewhere (test_server_jobs,
test_server_evaluations)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from convscope.testing.server import ServerProcess

EXAMPLES = 25  # per operation and database: about 40 operations, under a minute each
STARTS_WORK = [("POST", "/api/jobs"), ("POST", "/api/jobs/finetune"), ("POST", "/api/evaluations"),
               ("POST", "/api/models/{name}/download")]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fuzzed_server(request, tmp_path_factory, synthetic_mnist_dir):
    env = {"CONVSCOPE_MNIST_DIR": str(synthetic_mnist_dir), "CONVSCOPE_WORKERS": "1"}
    if request.param == "postgres":
        env["CONVSCOPE_DATABASE_URL"] = request.getfixturevalue("postgres").create_database("fuzzed")
    with ServerProcess(tmp_path_factory.mktemp(f"fuzz-{request.param}"), env=env) as server:
        yield server
        log = server.log.read_text()
    assert "Traceback" not in log, log[-4000:]  # nothing the server logged as a bug either


def test_no_request_gets_a_server_error(fuzzed_server):
    api = schemathesis.openapi.from_url(f"{fuzzed_server.url}/api/openapi.json")
    for method, path in STARTS_WORK:
        api = api.exclude(method=method, path=path)
    failures, operations, calls = [], 0, []
    for found in api.get_all_operations():
        operation = found.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case) -> None:
            response = case.call(timeout=30)
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                f"{response.text[:300]}\n{case.as_curl_command()}")

        call()
    assert operations >= 35 and len(calls) >= 10 * operations  # every operation but the excluded ones, fuzzed
    print(f"{len(calls)} requests over {operations} operations: "
          f"{sum(200 <= c < 300 for c in calls)} 2xx, {sum(400 <= c < 500 for c in calls)} 4xx")
    assert not failures, "\n\n".join(failures[:10])
