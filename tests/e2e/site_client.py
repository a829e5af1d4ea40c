"""Drives lariat's rodeo site server with the official Python MCP client, over stdio
(`lariat mcp site rodeo`) or, with MCP_TEST_URL, over Streamable HTTP with a bearer token.
SITE_MODE: full (every tool, writes enabled), forbidden (a plain user), unconfigured, disabled (writes off), dry (dry run),
uncertain (the site fails the entry's POST: the claim stays, a retry is told to look first).
SITE_EVENT: the event the full mode enters (each run enters a different one)."""
import asyncio
import os

from mcp import Client

from mcp_common import error_text, server, structured

TOOLS = {"search_events", "get_event", "get_standings", "list_my_entries", "preview_entry",
         "submit_entry", "preview_withdrawal", "withdraw_entry"}


async def check_tools(client):
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS, set(tools)
    for t in tools.values():
        assert t.description, t.name
        assert t.output_schema, t.name
        for name, prop in t.input_schema.get("properties", {}).items():
            assert prop.get("description"), (t.name, name)
    for name in ("submit_entry", "withdraw_entry"):
        a = tools[name].annotations
        assert a.destructive_hint is True and a.idempotent_hint is True and a.read_only_hint is False, a
    for name in ("search_events", "get_event", "get_standings", "list_my_entries", "preview_entry"):
        assert tools[name].annotations.read_only_hint is True, name


async def full(client, event):
    found = structured(await client.call_tool("search_events", {"state": "TX", "from": "2027-01-01"}))
    assert [e["id"] for e in found["events"]] == ["fortworth-2027", "sanantonio-2027", "houston-2027"], found
    assert "untrusted" in found["untrusted_content"], found
    detail = structured(await client.call_tool("get_event", {"id": event}))["event"]
    assert {d["discipline"] for d in detail["disciplines"]} >= {"Team Roping"}, detail
    top = structured(await client.call_tool("get_standings", {"discipline": "bull-riding", "top": 3}))
    assert len(top["standings"]) == 3 and top["standings"][0]["rank"] == "1", top
    mine = structured(await client.call_tool("list_my_entries", {}))
    before = len(mine["entries"])

    # bad arguments are tool errors, and the server keeps serving
    for tool, args, needle in [
        ("search_events", {"limit": -1}, "limit must be 1-100"),
        ("search_events", {"from": "next tuesday"}, "YYYY-MM-DD"),
        ("search_events", {"from": "2027-05-01", "to": "2027-01-01"}, "after"),
        ("get_event", {"id": "../admin"}, "letters, digits"),
        ("get_event", {"id": "no-such-rodeo"}, "not_found"),
        ("get_standings", {"discipline": " "}, "discipline is required"),
        ("preview_entry", {"event_id": event, "discipline": "Knitting"}, "does not offer"),
        ("submit_entry", {"confirm_token": "forged.token.here"}, "not valid"),
        ("preview_withdrawal", {"entry_id": "E9999"}, "no entry E9999"),
    ]:
        text = error_text(await client.call_tool(tool, args))
        assert needle in text, (tool, text)

    preview = structured(await client.call_tool(
        "preview_entry", {"event_id": event, "discipline": "team roping", "partner": "Jo Smith"}))
    assert preview["summary"].startswith("Enter Team Roping with partner Jo Smith"), preview
    assert preview["fee"] == "$150.00" and preview["writes_enabled"] is True, preview
    token = preview["confirm_token"]
    # a token for one action does not work for another
    assert "not withdraw_entry" in error_text(await client.call_tool("withdraw_entry", {"confirm_token": token}))
    sent = structured(await client.call_tool("submit_entry", {"confirm_token": token}))
    assert sent["status"] == "submitted" and sent["confirmation"] and not sent["repeated"], sent
    # the agent retries: the first result comes back, nothing is entered twice
    again = structured(await client.call_tool("submit_entry", {"confirm_token": token}))
    assert again["repeated"] is True and again["confirmation"] == sent["confirmation"], again
    mine = structured(await client.call_tool("list_my_entries", {}))
    assert len(mine["entries"]) == before + 1, mine

    # the site's validation errors come back clearly, and a retry gives the same answer
    late = structured(await client.call_tool("preview_entry", {"event_id": "cheyenne-2026", "discipline": "Bull Riding"}))
    assert any("deadline" in w for w in late["warnings"]), late
    for _ in range(2):
        text = error_text(await client.call_tool("submit_entry", {"confirm_token": late["confirm_token"]}))
        assert "refused it" in text and "deadline" in text, text

    # withdrawal, in two steps
    w = structured(await client.call_tool("preview_withdrawal", {"entry_id": sent["confirmation"]}))
    done = structured(await client.call_tool("withdraw_entry", {"confirm_token": w["confirm_token"]}))
    assert done["status"] == "withdrawn", done


async def main():
    mode = os.environ["SITE_MODE"]
    async with Client(server("site", "rodeo")) as client:
        await check_tools(client)
        if mode == "full":
            await full(client, os.environ["SITE_EVENT"])
        elif mode == "uncertain":
            preview = structured(await client.call_tool(
                "preview_entry", {"event_id": os.environ["SITE_EVENT"], "discipline": "Bull Riding"}))
            for _ in range(2):
                text = error_text(await client.call_tool("submit_entry", {"confirm_token": preview["confirm_token"]}))
                assert "may have reached" in text and "list_my_entries" in text, text
        elif mode == "forbidden":
            for tool, args in [("search_events", {}), ("list_my_entries", {}),
                               ("submit_entry", {"confirm_token": "x"})]:
                text = error_text(await client.call_tool(tool, args))
                assert text.startswith("forbidden") and "sites.rodeo.min_role" in text, text
        elif mode == "unconfigured":
            for tool, args in [("search_events", {}), ("get_event", {"id": "x"}), ("list_my_entries", {})]:
                text = error_text(await client.call_tool(tool, args))
                assert "not configured" in text and "sites.rodeo.layout" in text, text
        elif mode in ("disabled", "dry"):
            preview = structured(await client.call_tool(
                "preview_entry", {"event_id": "reno-2027", "discipline": "Bull Riding"}))
            assert preview["writes_enabled"] is (mode == "dry"), preview
            result = await client.call_tool("submit_entry", {"confirm_token": preview["confirm_token"]})
            if mode == "disabled":
                text = error_text(result)
                assert "forbidden" in text and "writes_enabled" in text, text
            else:
                dry = structured(result)
                assert dry["status"] == "dry_run" and dry["request"]["method"] == "POST", dry
                assert ["discipline", "Bull Riding"] in dry["request"]["fields"], dry
        else:
            raise SystemExit(f"unknown SITE_MODE {mode}")


asyncio.run(main())
