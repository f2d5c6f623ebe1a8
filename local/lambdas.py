"""Runs the template's Lambda handlers in-process, the way the Lambda runtime would.

Each function's module is loaded by file path under a unique module name (every handler file is
`app.py`), with the function's template environment (Globals merged) set while it is imported and
while it runs, and a Lambda context object.

Each function also gets its own copy of its layer and code-directory modules, as each Lambda function
has its own execution environment: module-level state such as `functools.cache`d boto3 clients or
settings is per function and per engine, never shared with another function, another engine (e.g. an
in-process one and a server one in the same pytest run) or the test process's own imports.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from local.template import Template

FUNCTION_TYPES = ("AWS::Serverless::Function",)
LAYER_TYPES = ("AWS::Serverless::LayerVersion",)

# os.environ is process-wide: one invocation at a time may swap it (also across engines). Code that
# copies os.environ from another thread must hold it too: botocore does when it creates a client,
# and a key removed mid-copy raises KeyError there (local/moto_patches.py takes it for moto's tasks).
ENVIRONMENT_LOCK = threading.RLock()


@dataclass(frozen=True)
class FunctionSpec:
    """What the engine needs to run one function of the template."""

    logical_id: str
    name: str
    arn: str
    handler_file: Path
    handler_name: str
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    environment: Mapping[str, str]
    timeout_seconds: int
    memory_mb: int
    properties: Mapping[str, Any] = field(repr=False)


def function_specs(template: Template, extra_env: Mapping[str, str]) -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function in the template, with its resolved environment."""
    return {
        logical_id: function_spec(template, logical_id, extra_env)
        for logical_id in template.resources(*FUNCTION_TYPES)
    }


def function_spec(template: Template, logical_id: str, extra_env: Mapping[str, str]) -> FunctionSpec:
    """Build the FunctionSpec of one function (Globals merged, intrinsics resolved)."""
    props = template.properties(logical_id)
    code_uri = template.resolve(props.get("CodeUri", "."))
    if not isinstance(code_uri, str):
        raise ValueError(f"{logical_id}: only a local CodeUri path is supported, got {code_uri!r}")
    module_path, _, handler_name = str(template.resolve(props["Handler"])).rpartition(".")
    code_dir = (template.root / code_uri).resolve()
    name = template.physical_name(logical_id)
    variables = template.resolve(props.get("Environment", {}).get("Variables", {}))
    timeout = int(template.resolve(props.get("Timeout", 3)))
    memory = int(template.resolve(props.get("MemorySize", 128)))
    environment = {
        # What the Lambda runtime sets (dummy credentials: a handler can never reach real AWS).
        "AWS_REGION": template.region,
        "AWS_DEFAULT_REGION": template.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        **{key: str(value) for key, value in variables.items()},
        **extra_env,
    }
    return FunctionSpec(
        logical_id=logical_id,
        name=name,
        arn=template.arn(logical_id),
        handler_file=code_dir / (module_path.replace(".", "/") + ".py"),
        handler_name=handler_name,
        code_dir=code_dir,
        layer_dirs=tuple(_layer_dirs(template, props.get("Layers", []))),
        environment=environment,
        timeout_seconds=timeout,
        memory_mb=memory,
        properties=props,
    )


def _layer_dirs(template: Template, layers: list[Any]) -> Iterator[Path]:
    # Only layers built from this template's sources matter; external ones (Powertools) are
    # installed in the venv already.
    local_layers = template.resources(*LAYER_TYPES)
    for layer in layers:
        if isinstance(layer, dict) and layer.get("Ref") in local_layers:
            content = (
                template.root / str(template.resolve(local_layers[layer["Ref"]]["Properties"]["ContentUri"]))
            ).resolve()
            # Without a BuildMethod the layer zip must hold python/; with one, SAM builds it there.
            yield content / "python" if (content / "python").is_dir() else content


@dataclass
class LambdaContext:
    """The context object a Python handler receives (the attributes Powertools reads)."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    identity: Any = None
    client_context: Any = None
    tenant_id: str | None = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the configured Timeout (not enforced locally)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalFunction:
    """One function, loaded lazily on its first invocation (a cold start), then kept warm."""

    def __init__(self, spec: FunctionSpec, instance_tag: str) -> None:
        self.spec = spec
        safe_id = re.sub(r"\W", "_", spec.logical_id)
        self._module_name = f"_local_lambda_{safe_id}_{instance_tag}"
        self._handler: Callable[[Any, Any], Any] | None = None
        self._own_modules: dict[str, ModuleType] = {}
        self._top_level = self._top_level_names()

    def invoke(self, event: Any) -> Any:
        """Run the handler with the function's environment; exceptions propagate to the caller."""
        with (
            ENVIRONMENT_LOCK,
            _environment(self.spec.environment),
            _swapped_modules(self._own_modules, self._top_level),
        ):
            handler = self._handler or self._load()
            context = LambdaContext(
                function_name=self.spec.name,
                invoked_function_arn=self.spec.arn,
                memory_limit_in_mb=self.spec.memory_mb,
                timeout_seconds=self.spec.timeout_seconds,
            )
            return handler(event, context)

    def _load(self) -> Callable[[Any, Any], Any]:
        for layer_dir in self.spec.layer_dirs:  # layers stay importable, like /opt/python
            if str(layer_dir) not in sys.path:
                sys.path.append(str(layer_dir))
        module_spec = importlib.util.spec_from_file_location(self._module_name, self.spec.handler_file)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load {self.spec.handler_file}")
        module: ModuleType = importlib.util.module_from_spec(module_spec)
        sys.modules[self._module_name] = module
        sys.path.insert(0, str(self.spec.code_dir))  # the handler's sibling modules, during import only
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(self._module_name, None)
            raise
        finally:
            sys.path.remove(str(self.spec.code_dir))
        # Called inside _swapped_modules: what the import added is this function's own copy.
        self._own_modules.update(_modules_under(self._top_level))
        self._handler = getattr(module, self.spec.handler_name)
        return self._handler

    def _top_level_names(self) -> set[str]:
        """Importable top-level names in the layers and the code directory (e.g. `serverlesspresso`)."""
        names: set[str] = set()
        for directory in (*self.spec.layer_dirs, self.spec.code_dir):
            for entry in directory.iterdir() if directory.is_dir() else ():
                if entry.suffix == ".py":
                    names.add(entry.stem)
                elif (entry / "__init__.py").is_file():
                    names.add(entry.name)
        return names

    def unload(self) -> None:
        """Forget the loaded module (the next invocation is a cold start)."""
        sys.modules.pop(self._module_name, None)
        self._handler = None


def _modules_under(top_level: set[str]) -> dict[str, ModuleType]:
    # Runs twice per invocation over all of sys.modules (thousands): keep it to C-level string tests.
    packages = tuple(f"{name}." for name in top_level)
    return {
        name: module
        for name, module in list(sys.modules.items())
        if name in top_level or name.startswith(packages)
    }


@contextmanager
def _swapped_modules(own: dict[str, ModuleType], top_level: set[str]) -> Iterator[None]:
    """Make `own` the only loaded copies of the top-level packages for the duration, then restore."""
    saved = _modules_under(top_level)
    for name in saved:
        del sys.modules[name]
    sys.modules.update(own)
    try:
        yield
    finally:
        for name in _modules_under(top_level):
            del sys.modules[name]
        sys.modules.update(saved)


@contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
