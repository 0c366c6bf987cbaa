"""A minimal Lambda runtime interface client: polls the Runtime API at AWS_LAMBDA_RUNTIME_API,
runs inventory.handler on each event and posts its answer. Importing the handler module is the
function's init, as on Lambda."""

import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inventory  # noqa: E402  (init: boto3 clients, Powertools utilities)

API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"


class Context:
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "bench")
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    log_group_name = log_stream_name = "bench"

    def __init__(self, request_id: str, deadline_ms: int):
        self.aws_request_id = request_id
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


while True:
    with urllib.request.urlopen(f"{API}/invocation/next") as response:
        request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        deadline_ms = int(response.headers["Lambda-Runtime-Deadline-Ms"])
        event = json.loads(response.read())
    try:
        result, outcome = inventory.handler(event, Context(request_id, deadline_ms)), "response"
    except Exception as error:  # the runtime reports it as an invocation error
        result, outcome = {"errorMessage": str(error), "errorType": type(error).__name__}, "error"
    urllib.request.urlopen(urllib.request.Request(
        f"{API}/invocation/{request_id}/{outcome}", data=json.dumps(result).encode(), method="POST"
    )).close()
