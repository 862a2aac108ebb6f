"""The gateway's half of agentgateway's ExtMcp protocol, driven for a test:
a real gRPC client (grpcio, its stubs generated here by grpcio-tools from
crates/tollgate-extmcp/proto/ext_mcp.proto) asks `tollgate serve` before each
`tools/call` and again with the upstream's result, exactly where agentgateway
asks; the upstream is the τ²-retail MCP server, reached with the official MCP
Python SDK. Prints one JSON object: what each step came to (the Rust test
asserts on it).

    python gateway_side.py ADDR[,ADDR...] AGENT_TOKEN REVIEWER_TOKEN SESSION -- UPSTREAM_COMMAND ARGS...
    python gateway_side.py --once ADDR AGENT_TOKEN SESSION     (one CheckRequest and one CheckResponse)

With several addresses the RPCs go to them in turn (replicas on one store).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import grpc
import grpc_tools
from google.protobuf import json_format, struct_pb2
from grpc_tools import protoc
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[4]
PROTO_DIR = ROOT / "crates/tollgate-extmcp/proto"

USER_EMAIL = "ivan.santos3158@example.com"
PENDING_ORDER = "#W8770097"  # ivan_santos_6635's, pending
OTHER_ORDER = "#W2611340"  # james_li_5688's


def stubs() -> Any:
    """The protocol's Python modules, generated from the .proto file."""
    out = Path(tempfile.mkdtemp(prefix="extmcp-stubs-"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main(
        [
            "protoc",
            f"-I{PROTO_DIR}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            str(PROTO_DIR / "ext_mcp.proto"),
        ]
    )
    if code != 0:
        raise SystemExit(f"protoc failed on {PROTO_DIR / 'ext_mcp.proto'}")
    sys.path.insert(0, str(out))
    import ext_mcp_pb2  # noqa: E402
    import ext_mcp_pb2_grpc  # noqa: E402

    return ext_mcp_pb2, ext_mcp_pb2_grpc


pb, pb_grpc = stubs()


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


def plain(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def verdict(result: Any) -> dict[str, Any]:
    kind = result.WhichOneof("result")
    out: dict[str, Any] = {"verdict": kind}
    if kind == "mutated":
        out["mutated"] = plain(result.mutated)
    if kind == "error":
        out["code"] = pb.AuthorizationError.Code.Name(result.error.code)
        out["reason"] = result.error.reason
        out["data"] = plain(result.error.mcp_error) if result.error.HasField("mcp_error") else None
    return out


async def once() -> None:
    """One authentication call's two checks, nothing forwarded."""
    addr, agent, session = sys.argv[2], sys.argv[3], sys.argv[4]
    bearer = [("authorization", f"Bearer {agent}")]
    context = struct({"tollgate_session": session, "tollgate_call": "once-1"})
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = pb_grpc.ExtMcpStub(channel)
        asked = await stub.CheckRequest(
            pb.McpRequest(
                service_names=["retail"],
                method="tools/call",
                metadata_context=context,
                mcp_request=struct({"name": "find_user_id_by_email", "arguments": {"email": USER_EMAIL}}),
            ),
            metadata=bearer,
            timeout=30,
        )
        answered = await stub.CheckResponse(
            pb.McpResponse(
                service_names=["retail"],
                method="tools/call",
                metadata_context=context,
                mcp_response=struct({"content": [{"type": "text", "text": "ivan_santos_6635"}]}),
            ),
            metadata=bearer,
            timeout=30,
        )
    print(json.dumps({"request": verdict(asked), "response": verdict(answered)}))


async def main() -> None:
    if sys.argv[1] == "--once":
        await once()
        return
    addrs = sys.argv[1].split(",")
    agent, reviewer, session = sys.argv[2], sys.argv[3], sys.argv[4]
    command = sys.argv[sys.argv.index("--") + 1 :]
    channels = [grpc.aio.insecure_channel(addr) for addr in addrs]
    replicas = itertools.cycle([pb_grpc.ExtMcpStub(channel) for channel in channels])
    bearer = [("authorization", f"Bearer {agent}")]
    out: dict[str, Any] = {}

    def context(extra: dict[str, Any] | None = None) -> struct_pb2.Struct:
        return struct({"tollgate_session": session, **(extra or {})})

    async def check(params: dict[str, Any], metadata: Any = bearer, ctx: Any = None) -> Any:
        request = pb.McpRequest(
            service_names=["retail"],
            method="tools/call",
            metadata_context=context() if ctx is None else ctx,
            mcp_request=struct(params),
        )
        return await next(replicas).CheckRequest(request, metadata=metadata, timeout=30)

    async with Client(StdioServerParameters(command=command[0], args=command[1:]), read_timeout_seconds=60) as upstream:

        async def through(step: str, name: str, args: dict[str, Any], say_which_call: bool = True) -> None:
            """One tools/call as agentgateway runs it."""
            asked = await check({"name": name, "arguments": args})
            seen = verdict(asked)
            record: dict[str, Any] = {"request": seen, "ran": False}
            out[step] = record
            if seen["verdict"] == "error":
                return
            params = seen.get("mutated") or {"name": name, "arguments": args}
            record["forwarded_meta"] = params.get("_meta")
            returned = plain(asked.metadata) if asked.HasField("metadata") else {}
            record["metadata"] = returned
            result = await upstream.call_tool(params["name"], params.get("arguments"), meta=params.get("_meta"))
            record["ran"] = True
            body = result.model_dump(by_alias=True, exclude_none=True, mode="json")
            # The gateway's configuration hands the request's metadata back
            # in the response's context (mcpGuardrails.tollgate_call).
            extra = {"tollgate_call": returned["tollgate_call"]} if say_which_call else {}
            answered = await next(replicas).CheckResponse(
                pb.McpResponse(
                    service_names=["retail"],
                    method="tools/call",
                    metadata_context=context(extra),
                    mcp_response=struct(body),
                ),
                metadata=bearer,
                timeout=30,
            )
            record["response"] = verdict(answered)
            delivered = record["response"].get("mutated") or body
            record["delivered"] = delivered
            record["text"] = "\n".join(block.get("text", "") for block in delivered.get("content", []))

        await through("cancel_before_auth", "cancel_pending_order", {"order_id": PENDING_ORDER, "reason": "no longer needed"})
        await through("find_user", "find_user_id_by_email", {"email": USER_EMAIL})
        await through("other_users_order", "get_order_details", {"order_id": OTHER_ORDER})
        # No call named in the response's context: the session's one call
        # awaiting a result is the one.
        await through("own_order", "get_order_details", {"order_id": PENDING_ORDER}, say_which_call=False)
        await through("cancel_after_read", "cancel_pending_order", {"order_id": PENDING_ORDER, "reason": "no longer needed"})

    # Refusals that are not the workflow's.
    call = {"name": "find_user_id_by_email", "arguments": {"email": USER_EMAIL}}
    out["no_token"] = verdict(await check(call, metadata=[]))
    out["forged_token"] = verdict(await check(call, metadata=[("authorization", "Bearer tg_" + "0" * 16 + "_" + "0" * 64)]))
    out["reviewer_token"] = verdict(await check(call, metadata=[("authorization", f"Bearer {reviewer}")]))
    out["no_session"] = verdict(await check(call, ctx=struct({})))
    out["no_tool_name"] = verdict(await check({"arguments": {}}))
    listed = await next(replicas).CheckRequest(
        pb.McpRequest(service_names=["retail"], method="tools/list", metadata_context=context()), metadata=bearer
    )
    out["tools_list"] = verdict(listed)
    try:
        await channels[0].unary_unary("/agentgateway.dev.ext_mcp.ExtMcp/Nothing")(b"", timeout=10)
        out["unknown_method"] = "answered"
    except grpc.aio.AioRpcError as error:
        out["unknown_method"] = error.code().name
    for channel in channels:
        await channel.close()
    print(json.dumps(out))


if __name__ == "__main__":
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
    asyncio.run(main())
