"""The push channel on loopback: the template's WebSocket API served in front of the local engine.

- `server.LocalPush`: the WebSocket endpoint (ws://HOST:PORT) and API Gateway's management API
  (PostToConnection) for the fan-out function, running the template's $connect / $disconnect handlers.
- `events`: the API Gateway WebSocket events those handlers receive.
- `watch`: a terminal client that prints every message (`make watch USER=alice`).
"""
