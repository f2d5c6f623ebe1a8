"""bench/rush.py --profile: py-spy's collapsed stacks summed by process and by the work they were for."""

from pathlib import Path

from bench.common import ROOT
from bench.rush import profile_summary

SITE = "/venv/lib/python3.13/site-packages"
STACK = 'process 10:"python -m local.cli"'
MOTO = f'{STACK};process 11:"python -m local.server --child"'
WORKER = f'{STACK};process 12:"python -c from multiprocessing.spawn import spawn_main"'


def _frame(function: str, path: str, line: int = 1) -> str:
    return f"{function} ({path}:{line})"


def test_the_profile_says_which_service_function_and_engine_part_the_samples_were_for(tmp_path: Path) -> None:
    # Given py-spy samples: the moto server answering DynamoDB and running a workflow, routing a
    # request, a worker inside a handler and waiting, and the engine's dispatcher
    http = _frame("process_request_thread", "/usr/lib/python3.13/socketserver.py")
    routing = _frame("dispatch", f"{SITE}/moto/core/responses.py")
    stacks = {
        f"{MOTO};{http};{routing};{_frame('put_item', f'{SITE}/moto/dynamodb/responses.py')}": 30,
        f"{MOTO};{_frame('run', f'{SITE}/moto/stepfunctions/parser/asl/eval.py')}": 20,
        f"{MOTO};{http};{routing}": 10,
        f"{MOTO};{http}": 5,
        f"{WORKER};{_frame('lambda_handler', f'{ROOT}/functions/api/app.py')};"
        f"{_frame('_make_api_call', f'{SITE}/botocore/client.py')}": 20,
        f"{WORKER};{_frame('_recv', '/usr/lib/python3.13/multiprocessing/connection.py')}": 5,
        f"{STACK};{_frame('_serve', f'{ROOT}/local/dispatch.py', 213)}": 10,
    }
    raw = tmp_path / "rush.spy"
    raw.write_text("".join(f"{stack} {count}\n" for stack, count in stacks.items()))

    # When it is summarized
    profile = profile_summary(raw)

    # Then the shares add up by process and say what each sample was for
    assert dict(profile.by_process) == {
        "moto server": 0.65,
        "function workers": 0.25,
        "stack (dispatcher, API, push)": 0.10,
    }
    assert dict(profile.by_work) == {
        "moto: dynamodb": 0.30,
        "moto: stepfunctions": 0.20,
        "function: api": 0.20,
        "moto: request routing and serialization": 0.10,
        "stack: local/dispatch.py": 0.10,
        "moto: HTTP serving": 0.05,
        "function: waiting for and passing invocations": 0.05,
    }
    assert profile.by_function[0] == ("moto: put_item (responses.py:1)", 0.30)
