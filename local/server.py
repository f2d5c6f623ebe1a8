"""A moto server with the local patches applied and state machine execution on.

    python -m local.server --port 5000

Then `LocalEngine.provision(endpoint_url="http://127.0.0.1:5000")`. The patches in
local/moto_patches.py must live in the server's process (that is where moto runs the ASL), which is
why a plain `moto_server` is not enough.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading

from moto.core.config import default_user_config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from local import moto_patches


def start_server(port: int = 0, host: str = "127.0.0.1") -> tuple[ThreadedMotoServer, str]:
    """Start a patched moto server in a thread of this process; return it and its endpoint URL."""
    moto_patches.apply()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one log line per request
    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    # moto's Step Functions interpreter calls the other services back at localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(bound_port)
    return server, f"http://{bound_host}:{bound_port}"


def main() -> None:
    """Run until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    server, url = start_server(args.port, args.host)
    print(f"patched moto server on {url} (patches: {', '.join(moto_patches.installed())})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
