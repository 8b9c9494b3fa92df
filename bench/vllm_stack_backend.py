"""The benchmark's pre-encoded answers served by vLLM's HTTP stack: FastAPI on uvicorn (`--vllm-stack`).

`fast_backend` answers with a raw socket protocol so that the proxy's own cost stands out; a real vLLM or
SGLang server answers through FastAPI and uvicorn, whose per-request cost is of the same order as the proxy's.
This backend sends the same 20 events (one `yield` each, as vLLM's streaming generator does) so that the run
also shows what putting the proxy in front of such a server costs. Needs `fastapi` and `uvicorn` (the `bench`
extra). Run as its own process: `python -m bench.vllm_stack_backend` prints `LISTENING <port>`.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import AsyncIterator

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from bench.fast_backend import MODEL, completion, stream_chunks

EVENTS = [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in stream_chunks()] + [b"data: [DONE]\n\n"]
COMPLETION = orjson.dumps(completion())
MODELS = orjson.dumps(
    {
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "owned_by": "bench", "max_model_len": 131072}],
    }
)

app = FastAPI()


async def _events() -> AsyncIterator[bytes]:
    for event in EVENTS:
        yield event


@app.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    body = orjson.loads(await request.body())  # vLLM parses (and validates) every request body
    if not body.get("stream"):
        return Response(COMPLETION, media_type="application/json")
    return StreamingResponse(_events(), media_type="text/event-stream")


@app.get("/v1/models")
async def models() -> Response:
    return Response(MODELS, media_type="application/json")


@app.get("/health")
async def health() -> Response:
    return Response(status_code=200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port", type=int, default=0, help="0 picks a free port (printed as LISTENING <port>)"
    )
    port = parser.parse_args().port
    sock = socket.create_server(("127.0.0.1", port), backlog=4096)  # bound here: the port is known to uvicorn
    print(f"LISTENING {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
