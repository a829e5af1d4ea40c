"""The web app's journeys in Debian's Chromium, driven by Playwright (PyPI; never a downloaded
browser), against a running `lariat serve` with the sample corpus. Run by the e2e test `browser`:
sign up; ask, watch the answer stream, hover and open a citation; search, rename and delete
conversations; search the corpus; sign in again after the session is gone and land back.

Each page is scanned with axe-core (no serious or critical violation) and photographed at desktop
and phone width into --shots. Prints the first page's transfer size and the time from pressing
Enter to the first streamed word, as JSON on the last line.

usage: journeys.py --base URL --shots DIR --axe PATH/axe.min.js
"""

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time

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


class Journeys:
    def __init__(self, base, shots, axe_source):
        self.base = base
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
        await box.fill("How does a bareback rider hold on?")
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

    async def search_conversations(self, page):
        await page.get_by_label("Search conversations").fill("bareback")
        await expect(page.locator("#conv-list a", has_text="bareback")).to_be_visible()
        await page.get_by_label("Search conversations").fill("zzzzzz")
        await expect(page.locator("#conv-list")).to_contain_text("No conversation matches")

    async def rename_and_delete(self, page):
        await page.goto(self.conversation_url)
        await page.get_by_text("Rename or delete").click()
        await page.get_by_label("Title").fill("Rigging questions")
        await page.get_by_role("button", name="Rename").click()
        await expect(page.get_by_role("heading", name="Rigging questions")).to_be_visible()
        await expect(page.locator("#conv-list")).to_contain_text("Rigging questions")
        page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await page.get_by_text("Rename or delete").click()
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
            page = await context.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            self.email = f"browser-{int(time.time() * 1000)}@example.com"
            await self.sign_up(page, self.email)
            await self.ask_and_check_sources(page)
            await self.search_conversations(page)
            await self.rename_and_delete(page)
            await self.search(page)
            await self.expired_session_comes_back(context, page)
            if errors:
                self.problems.append(f"script errors: {errors}")
            await browser.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--shots", required=True)
    parser.add_argument("--axe", required=True)
    args = parser.parse_args()
    with open(args.axe, encoding="utf-8") as f:
        axe_source = f.read()
    journeys = Journeys(args.base.rstrip("/"), args.shots, axe_source)
    await journeys.run()
    print(json.dumps(journeys.figures))
    if journeys.problems:
        print("\n".join(journeys.problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
