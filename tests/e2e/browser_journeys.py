"""The web app's journeys in Debian's Chromium, driven by Playwright (PyPI; never a downloaded
browser), against a running `lariat serve` with the sample corpus and a fake model provider the
script switches off and on. Run by the e2e test `browser`: sign up; ask, watch the answer stream,
hover and open a citation, copy and regenerate; the provider down, then Retry; search, rename and
delete conversations; search the corpus; a user kept out of curator and admin pages until an admin
makes them a curator, who then uploads three files and deletes one; an API key made, used and
revoked; sign in again after the session is gone and land back.

Each page is scanned with axe-core (no serious or critical violation) and photographed at desktop
and phone width into --shots. Prints the first page's transfer size and the time from pressing
Enter to the first streamed word, as JSON on the last line.

usage: journeys.py --base URL --shots DIR --axe PATH/axe.min.js --admin EMAIL --admin-password PW
                   --provider-control URL
"""

import argparse
import asyncio
import json
import re
import sys
import os
import tempfile
import time
import urllib.error
import urllib.request

from playwright.async_api import async_playwright, expect

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "a long browser password"
UPLOADS = {
    "quokka-drills.md": "# Quokka barrel drills\n\nRiders run the quokka cloverleaf three times before a rodeo.\n",
    "chute-notes.txt": "Chute notes\n\nThe wombat chute gate must latch before a bull is loaded.\n",
    "arena.html": "<html><head><title>Arena footing</title></head><body><p>Arena footing is harrowed "
    "between numbat sections.</p></body></html>",
}


def status_of(url, method="GET", token=None):
    """The HTTP status of a request made outside the browser (a script holding an API key)."""
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


class Journeys:
    def __init__(self, base, shots, axe_source, admin, admin_password, control):
        self.base = base
        self.admin = admin
        self.admin_password = admin_password
        self.control = control
        self.shots = shots
        self.axe = axe_source
        self.problems = []
        self.figures = {}

    async def audit(self, page, name):
        """axe-core on the page as it stands, then a photograph at desktop and phone width."""
        await page.evaluate(self.axe)
        result = await page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length}))"
        )
        # the page's own HTML over the wire (compressed); its assets are cached after the first
        self.figures.setdefault("page_bytes", {})[name] = await page.evaluate(
            "() => performance.getEntriesByType('navigation')[0]?.transferSize ?? 0"
        )
        bad = [v for v in result if v["impact"] in ("serious", "critical")]
        if bad:
            self.problems.append(f"{name}: accessibility violations {bad}")
        for width, height, label in [(1280, 860, "desktop"), (360, 740, "phone")]:
            await page.set_viewport_size({"width": width, "height": height})
            await page.screenshot(path=f"{self.shots}/{name}-{label}.png", full_page=True)
        await page.set_viewport_size({"width": 1280, "height": 860})

    async def sign_up(self, page, email):
        await page.goto(self.base + "/")
        await expect(page).to_have_url(re.compile(r"/signin"))
        await self.audit(page, "signin")
        await page.get_by_role("link", name="Create an account").click()
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign up").click()
        await expect(page).to_have_url(re.compile(r"/chat$"))

    async def ask_and_check_sources(self, page):
        await self.audit(page, "chat-new")
        box = page.get_by_label("Message")
        # the fake model answers with a heading rope's length: its source must be among those found
        await box.fill("How long is a heading rope, and how does a bareback rider hold on?")
        # the time from Enter to the first streamed word, measured in the page
        await page.evaluate(
            """() => { window.__firstWord = new Promise(resolve => {
                   const start = performance.now();
                   new MutationObserver((_, obs) => {
                     const a = document.querySelector('.msg.assistant .answer');
                     if (a && a.textContent.trim()) { obs.disconnect(); resolve(performance.now() - start); }
                   }).observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true});
               }); }"""
        )
        await box.press("Enter")
        self.figures["enter_to_first_word_ms"] = round(await page.evaluate("window.__firstWord"), 1)
        await expect(page.locator(".msg.assistant .sources")).to_be_visible(timeout=20000)
        await expect(page).to_have_url(re.compile(r"/chat/[0-9a-f-]+$"))
        await expect(page.locator("#conv-list a", has_text="bareback")).to_be_visible()
        await expect(page.get_by_role("heading", level=1)).to_contain_text("bareback")
        self.conversation_url = page.url
        chip = page.locator(".msg.assistant .cite").first
        await expect(chip).to_be_visible()
        await chip.hover()
        await expect(page.locator("#hover-card")).to_be_visible()
        await chip.click()
        cited = page.locator("#panel .passage.cited")
        await expect(cited).to_be_visible()
        await expect(cited).to_be_focused()
        await self.audit(page, "chat-sources")
        await page.locator("#panel").get_by_role("link", name="Open the whole document").click()
        await expect(page.locator(".document .passage:target")).to_be_visible()
        await self.audit(page, "document")
        await page.goto(self.conversation_url)

    async def search_conversations(self, page):
        await page.get_by_label("Search conversations").fill("bareback")
        await expect(page.locator("#conv-list a", has_text="bareback")).to_be_visible()
        await page.get_by_label("Search conversations").fill("zzzzzz")
        await expect(page.locator("#conv-list")).to_contain_text("No conversation matches")

    async def rename_and_delete(self, page):
        await page.goto(self.conversation_url)
        await page.get_by_text("Export, rename or delete").click()
        async with page.expect_download() as info:
            await page.get_by_role("link", name="PDF").click()
        download = await info.value
        assert download.suggested_filename.endswith(".pdf"), download.suggested_filename
        with open(await download.path(), "rb") as pdf:
            assert pdf.read(5) == b"%PDF-"
        await page.get_by_label("Title").fill("Rigging questions")
        await page.get_by_role("button", name="Rename").click()
        await expect(page.get_by_role("heading", name="Rigging questions")).to_be_visible()
        await expect(page.locator("#conv-list")).to_contain_text("Rigging questions")
        page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await page.get_by_text("Export, rename or delete").click()
        await page.get_by_role("button", name="Delete conversation").click()
        await expect(page).to_have_url(re.compile(r"/chat$"))
        await expect(page.locator("#conv-list")).not_to_contain_text("Rigging questions")

    async def search(self, page):
        await page.goto(self.base + "/search")
        await page.get_by_label("Search for").fill("heel rope")
        await page.get_by_role("button", name="Search").click()
        await expect(page.locator(".hits mark").first).to_be_visible()
        await self.audit(page, "search")

    async def expired_session_comes_back(self, context, page):
        """Without its cookies the browser signs in again and lands where it was going."""
        await context.clear_cookies()
        await page.goto(self.base + "/search?q=rigging")
        await expect(page).to_have_url(re.compile(r"/signin\?next="))
        await page.get_by_label("Email").fill(self.email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(re.compile(r"/search\?q=rigging$"))
        await expect(page.locator(".hits mark").first).to_be_visible()

    async def sign_in(self, page, email, password):
        await page.goto(self.base + "/signin")
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(re.compile(r"/chat$"))

    async def copy_and_regenerate(self, page):
        answer = page.locator(".msg.assistant").first
        await answer.get_by_role("button", name="Copy").click()
        await expect(answer.get_by_role("button", name="Copied")).to_be_visible()
        copied = await page.evaluate("navigator.clipboard.readText()")
        if "35 feet" not in copied or "[1]" not in copied:
            self.problems.append(f"Copy put {copied!r} on the clipboard")
        await answer.get_by_role("button", name="Regenerate").click()
        await expect(page.locator(".msg.assistant .sources")).to_have_count(2, timeout=20000)
        await expect(page.locator(".msg.user")).to_have_count(2)

    async def provider_down_then_retry(self, page):
        await asyncio.to_thread(status_of, self.control + "/down", "POST")
        box = page.get_by_label("Message")
        await box.fill("What does a bullfighter do?")
        await box.press("Enter")
        problem = page.locator("#ask-error")
        await expect(problem).to_be_visible(timeout=20000)
        await expect(problem.get_by_role("button", name="Retry")).to_be_visible()
        await self.audit(page, "chat-provider-down")
        await asyncio.to_thread(status_of, self.control + "/up", "POST")
        await problem.get_by_role("button", name="Retry").click()
        await expect(problem).to_be_hidden()
        await expect(page.locator(".msg.assistant .sources")).to_have_count(3, timeout=20000)

    async def kept_out_of_curator_pages(self, page):
        await page.goto(self.base + "/collections")
        await self.audit(page, "collections")
        await page.get_by_role("link", name="rodeo").click()
        await expect(page.get_by_role("heading", name="Documents")).to_be_visible()
        await self.audit(page, "collection-reader")
        for control in ["Add documents", "Settings", "Members"]:
            await expect(page.get_by_role("heading", name=control)).to_have_count(0)
        await expect(page.get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)
        await expect(page.get_by_role("link", name="Admin")).to_have_count(0)
        response = await page.goto(self.base + "/admin")
        if response.status != 403:
            self.problems.append(f"a plain user reached /admin: {response.status}")
        await expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
        await self.audit(page, "forbidden")

    async def admin_makes_a_curator(self, browser):
        context = await browser.new_context(bypass_csp=True)
        page = await context.new_page()
        await self.sign_in(page, self.admin, self.admin_password)
        await page.get_by_role("link", name="Admin").click()
        await expect(page.get_by_role("heading", name="System status")).to_be_visible()
        await expect(page.locator(".facts")).to_contain_text("consistent")
        await self.audit(page, "admin")
        await page.get_by_label("Find users by email").fill(self.email)
        await page.get_by_role("button", name="Find").click()
        row = page.locator(".user-row", has_text=self.email)
        await expect(row).to_have_count(1)
        await row.get_by_label("Role").select_option("curator")
        # the admin vouches for the address (until it is verified the user makes no API key)
        await row.get_by_label("Address verified").check()
        await row.get_by_role("button", name=f"Save {self.email}").click()
        await expect(page.locator(".notice")).to_contain_text("The user was updated")
        await page.goto(self.base + "/collections/rodeo")
        await page.get_by_label("Email", exact=True).fill(self.email)
        await page.get_by_label("Role").select_option("curator")
        await page.get_by_role("button", name="Add member").click()
        await expect(page.locator(".notice")).to_contain_text("The members were updated")
        await expect(page.locator(".members")).to_contain_text(f"{self.email} · curator")
        await self.audit(page, "collection-admin")
        await context.close()

    async def curator_uploads_three_files(self, page):
        await page.goto(self.base + "/collections/rodeo")
        await expect(page.get_by_role("heading", name="Add documents")).to_be_visible()
        folder = tempfile.mkdtemp()
        paths = []
        for name, text in UPLOADS.items():
            paths.append(os.path.join(folder, name))
            with open(paths[-1], "w", encoding="utf-8") as f:
                f.write(text)
        await page.get_by_label(re.compile("^Files to add")).set_input_files(paths)
        await page.get_by_role("button", name="Upload").click()
        rows = page.locator("#uploads li")
        await expect(rows).to_have_count(3)
        for i in range(3):
            await expect(rows.nth(i)).to_contain_text("Indexed", timeout=60000)
            if await rows.nth(i).locator("progress").evaluate("p => p.value") != 100:
                self.problems.append(f"upload {i} did not show its progress to the end")
        await expect(page.locator("#documents")).to_contain_text("Quokka barrel drills")
        # the HTML file (past ingest.background_upload_bytes) went through a job, listed on reload
        await page.goto(self.base + "/collections/rodeo")
        jobs = page.get_by_role("table", name="Upload jobs")
        await expect(jobs.locator("tr", has_text="arena.html")).to_contain_text("succeeded")
        await expect(page.locator("#documents")).to_contain_text("Arena footing")
        # a text file without a heading is titled by its file name
        await expect(page.locator("#documents td.title", has_text="chute-notes")).to_have_text("chute-notes")
        await self.audit(page, "collection-curator")
        await page.goto(self.base + "/search?q=wombat+chute&collection=rodeo")
        await expect(page.locator(".hits")).to_contain_text("wombat")
        await page.goto(self.base + "/collections/rodeo?q=quokka")
        page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await page.get_by_role("button", name="Delete Quokka barrel drills").click()
        await expect(page.locator(".notice")).to_contain_text("The document was deleted")
        await expect(page.locator("#documents")).not_to_contain_text("Quokka")

    async def api_key_made_used_and_revoked(self, page):
        await page.goto(self.base + "/account")
        await expect(page.get_by_role("heading", name="This month's usage")).to_be_visible()
        await self.audit(page, "account")
        await page.get_by_label("Key name").fill("browser script")
        await page.get_by_role("button", name="Create key").click()
        key = await page.get_by_label("New API key").input_value()
        await page.get_by_role("button", name="Copy").click()
        if await page.evaluate("navigator.clipboard.readText()") != key:
            self.problems.append("Copy did not put the new key on the clipboard")
        await self.audit(page, "account-new-key")
        me = self.base + "/api/auth/me"
        if (got := await asyncio.to_thread(status_of, me, "GET", key)) != 200:
            self.problems.append(f"the new key was refused: {got}")
        await page.goto(self.base + "/account")
        if key in await page.content():
            self.problems.append("the key's secret was shown a second time")
        page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await page.get_by_role("button", name="Revoke browser script").click()
        await expect(page.locator(".notice")).to_contain_text("revoked")
        if (got := await asyncio.to_thread(status_of, me, "GET", key)) != 401:
            self.problems.append(f"the revoked key still works: {got}")

    async def first_page_weight(self, browser):
        """Bytes over the wire for the sign-in page and everything it loads (compressed)."""
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(self.base + "/signin", wait_until="networkidle")
        total = await page.evaluate(
            "() => performance.getEntriesByType('navigation')[0].transferSize + "
            "performance.getEntriesByType('resource').reduce((s, r) => s + r.transferSize, 0)"
        )
        self.figures["first_page_bytes"] = total
        if total > 100 * 1024:
            self.problems.append(f"the first page weighs {total} bytes over the wire (limit 100 KB)")
        await context.close()

    async def run(self):
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            await self.first_page_weight(browser)
            # axe is injected by evaluation; the pages' own policy stays in force otherwise
            context = await browser.new_context(bypass_csp=True)
            await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=self.base)
            page = await context.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            self.email = f"browser-{int(time.time() * 1000)}@example.com"
            await self.sign_up(page, self.email)
            await self.ask_and_check_sources(page)
            await self.copy_and_regenerate(page)
            await self.provider_down_then_retry(page)
            await self.search_conversations(page)
            await self.rename_and_delete(page)
            await self.search(page)
            await self.kept_out_of_curator_pages(page)
            await self.admin_makes_a_curator(browser)
            await self.curator_uploads_three_files(page)
            await self.api_key_made_used_and_revoked(page)
            await self.expired_session_comes_back(context, page)
            if errors:
                self.problems.append(f"script errors: {errors}")
            await browser.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--shots", required=True)
    parser.add_argument("--axe", required=True)
    parser.add_argument("--admin", required=True)
    parser.add_argument("--admin-password", required=True)
    parser.add_argument("--provider-control", required=True)
    args = parser.parse_args()
    with open(args.axe, encoding="utf-8") as f:
        axe_source = f.read()
    journeys = Journeys(
        args.base.rstrip("/"),
        args.shots,
        axe_source,
        args.admin,
        args.admin_password,
        args.provider_control,
    )
    await journeys.run()
    print(json.dumps(journeys.figures))
    if journeys.problems:
        print("\n".join(journeys.problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
