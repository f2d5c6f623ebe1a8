"""Fixtures for the local engine's own tests: an engine in either mode, and editable template copies."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from moto.core.config import default_user_config

from local.engine import LocalEngine
from local.server import start_server
from local.template import Template
from tests.template_tables import ROOT as REPO
from tests.template_tables import TEMPLATE_PATH as TEMPLATE

TIME_SCALE = 0.01

EngineFactory = Callable[..., AbstractContextManager[LocalEngine]]


@pytest.fixture(params=["in_process", "server"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both ways the engine runs: inside mock_aws, and against a (patched) moto server."""
    mode_name: str = request.param
    return mode_name


@pytest.fixture
def make_engine(mode: str, monkeypatch: pytest.MonkeyPatch) -> EngineFactory:
    """make_engine(template_path, **options) -> context manager of a provisioned engine (dispatcher off)."""

    @contextmanager
    def in_mode(
        path: Path = TEMPLATE, time_scale: float = TIME_SCALE, **options: Any
    ) -> Iterator[LocalEngine]:
        if mode == "in_process":
            with LocalEngine.in_process(path, time_scale, start_dispatcher=False, **options) as engine:
                yield engine
            return
        # The server runs in this process: restore what it changes process-wide afterwards.
        monkeypatch.setenv("MOTO_PORT", "0")
        monkeypatch.setitem(default_user_config, "stepfunctions", dict(default_user_config["stepfunctions"]))
        server, url = start_server(port=0)
        try:
            engine = LocalEngine.provision(path, time_scale, endpoint_url=url, **options)
            try:
                yield engine
            finally:
                engine.close()
        finally:
            urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).read()
            server.stop()

    return in_mode


@pytest.fixture
def template_copy(tmp_path: Path) -> Callable[[Callable[[dict[str, Any]], None]], Path]:
    """template_copy(edit) -> path of template.yaml as JSON in tmp_path after edit(body).

    The repository's functions/ and statemachine/ are linked beside it, so CodeUri and DefinitionUri
    still resolve.
    """

    def write(edit: Callable[[dict[str, Any]], None]) -> Path:
        body = json.loads(json.dumps(Template.load(TEMPLATE).body))
        edit(body)
        for shared in ("functions", "statemachine"):
            if not (tmp_path / shared).exists():
                (tmp_path / shared).symlink_to(REPO / shared)
        path = tmp_path / "template.json"
        path.write_text(json.dumps(body, indent=1))
        return path

    return write
