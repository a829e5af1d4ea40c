"""Drives lariat's MCP knowledge server with the official Python MCP client: every tool and the
error paths, over stdio (`lariat mcp`) or, with MCP_TEST_URL, over Streamable HTTP with a bearer
token."""
import asyncio
import base64
import json
import os
import sys

from mcp import Client

from mcp_common import server, structured


async def main():
    async with Client(server()) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"search", "ask", "list_collections", "get_document", "get_passage", "export_conversation"}, tools
        for t in tools.values():
            assert t.description, t.name
            assert t.annotations.read_only_hint is True, t.name
            # the export is a resource (a file), every other tool answers structured data
            assert bool(t.output_schema) == (t.name != "export_conversation"), t.name
        props = tools["search"].input_schema["properties"]
        assert props["query"]["description"] and props["k"]["description"], props

        expected = json.loads(os.environ["MCP_EXPECT_COLLECTIONS"])
        cols = structured(await client.call_tool("list_collections", {}))
        assert [c["name"] for c in cols["collections"]] == expected, cols

        found = structured(await client.call_tool("search", {"query": "how long is a heading rope", "k": 3, "collection": "rodeo"}))
        assert len(found["hits"]) == 3 and found["mode"] == "hybrid", found
        hit = found["hits"][0]
        passage = structured(await client.call_tool("get_passage", {"id": hit["chunk_id"]}))
        assert passage["text"] == hit["text"] and passage["source"] == hit["source"], passage
        doc = structured(await client.call_tool("get_document", {"id": hit["document_id"]}))
        assert hit["chunk_id"] in [p["chunk_id"] for p in doc["passages"]], doc

        # documents are resources too
        resources, cursor, pages = [], None, 0
        while True:
            page = await client.list_resources(cursor=cursor)
            pages += 1
            resources += page.resources
            cursor = page.next_cursor
            if cursor is None:
                break
            assert len(page.resources) == 100, len(page.resources)
        assert pages == 1 + (len(resources) - 1) // 100, (pages, len(resources))
        assert len({str(r.uri) for r in resources}) == len(resources), "no resource listed twice"
        if not os.environ["MCP_SECRET_ERROR"]:
            assert pages == 2, pages
        try:
            await client.list_resources(cursor="not-a-cursor")
        except Exception as e:
            assert "not a cursor" in str(e), e
        else:
            raise AssertionError("a bad cursor was accepted")
        uris = {str(r.uri) for r in resources}
        uri = f"lariat://documents/{hit['document_id']}"
        assert uri in uris, uris
        assert any("secret" in (r.description or "") for r in resources) == (not os.environ["MCP_SECRET_ERROR"]), resources
        contents = (await client.read_resource(uri)).contents
        assert hit["text"] in contents[0].text, contents
        for bad, needle in [
            ("lariat://documents/nope", "no document nope"),
            ("file:///etc/passwd", "not a lariat document uri"),
        ]:
            try:
                await client.read_resource(bad)
            except Exception as e:  # an MCP error, and the server keeps serving
                assert needle in str(e).lower(), e
            else:
                raise AssertionError(f"{bad} was read")

        answer = structured(await client.call_tool("ask", {"question": "How long is a heading rope?"}))
        assert answer["answer"] and answer["citations"] and answer["conversation_id"], answer
        follow = structured(await client.call_tool("ask", {"question": "And for heeling?", "conversation_id": answer["conversation_id"]}))
        assert follow["conversation_id"] == answer["conversation_id"], follow

        # the conversation taken away: Markdown as text, the PDF as a base64 blob
        md = await client.call_tool("export_conversation", {"conversation_id": answer["conversation_id"], "format": "md"})
        assert not md.is_error, md
        resource = md.content[0].resource
        assert resource.mime_type.startswith("text/markdown") and str(resource.uri).endswith(".md"), resource
        assert "How long is a heading rope?" in resource.text and "And for heeling?" in resource.text, resource.text
        assert "## Sources" in resource.text and answer["citations"][0]["chunk_id"] in resource.text, resource.text
        pdf = (await client.call_tool("export_conversation", {"conversation_id": answer["conversation_id"]})).content[0].resource
        assert pdf.mime_type == "application/pdf" and base64.b64decode(pdf.blob).startswith(b"%PDF-"), pdf.uri

        for name, args, needle in [
            ("search", {"query": "   "}, "invalid_input"),
            ("search", {"query": "rope", "k": -1}, "k must be"),
            ("search", {"query": "rope", "mode": "fuzzy"}, "invalid_input"),
            ("get_passage", {"id": "nope"}, "not_found"),
            ("get_document", {"id": "nope"}, "not_found"),
            ("ask", {"question": "x", "conversation_id": "nope"}, "not_found"),
            ("export_conversation", {"conversation_id": "nope"}, "not_found"),
            ("export_conversation", {"conversation_id": "nope", "format": "docx"}, "unknown export format"),
        ]:
            result = await client.call_tool(name, args)
            assert result.is_error, (name, args, result)
            text = result.content[0].text
            assert needle in text, (name, args, text)
        # a private collection: found for those who may read it, unknown to the others
        secret = await client.call_tool("search", {"query": "rope password", "collection": "secret"})
        if os.environ["MCP_SECRET_ERROR"]:
            assert secret.is_error and os.environ["MCP_SECRET_ERROR"] in secret.content[0].text, secret
        else:
            assert structured(secret)["hits"][0]["collection"] == "secret", secret
        # the server keeps serving after errors
        cols = structured(await client.call_tool("list_collections", {}))
        assert cols["collections"], cols
    print("ok", file=sys.stderr)


asyncio.run(main())
