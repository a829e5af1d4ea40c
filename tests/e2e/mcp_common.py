"""What the MCP client scripts share: reaching lariat over stdio or Streamable HTTP, and reading
tool results. The server is `lariat --data-dir $MCP_TEST_DATA mcp ARGS…` on stdio, or, with
MCP_TEST_URL set, that URL with `Authorization: Bearer $MCP_TEST_TOKEN`."""
import json
import os

import httpx2
from mcp import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client


def server(*mcp_args):
    url = os.environ.get("MCP_TEST_URL")
    if url:
        headers = {"Authorization": f"Bearer {os.environ['MCP_TEST_TOKEN']}"}
        return streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=60))
    return StdioServerParameters(
        command=os.environ["MCP_TEST_BIN"],
        args=["--data-dir", os.environ["MCP_TEST_DATA"], "mcp", *mcp_args],
        env=dict(os.environ),
    )


def structured(result):
    """A successful result's structured content, checked against its text content."""
    assert not result.is_error, result
    data = result.structured_content
    assert data is not None, result
    # the same data as text content, for clients without structured output
    assert json.loads(result.content[0].text) == data
    return data


def error_text(result):
    assert result.is_error, result
    return result.content[0].text
