"""Offload: run a pipeline's model on a server (`edgewatch serve`) while tracking, analytics and sinks stay
on the edge (`--detector remote://HOST:PORT`). docs/offload.md describes the protocol.

| module | owns |
| --- | --- |
| `address` | `remote://` and `ws://` addresses and the WebSocket URL they stand for |
| `protocol` | the hello, the frame message, the answer, close codes and the version |
| `slots` | load shedding: each client's newest frame, and the batches the model takes |
| `server` | the WebSocket server and its model thread |
| `remote` | `RemoteDetector`, the client, with its fallback |
"""
