"""Single sign-on in Debian's Chromium (Playwright), with the pages' Content-Security-Policy in
force: the sign-in page's "Sign in with Test ID" button goes to the real OpenID provider the e2e
test started, its login and consent screens are filled in, and the provider's redirect lands the
browser signed in on the chat page; the account page then lists the linked provider and says the
account has no password; after signing out, the button signs in again. Lariat's public URL is
http://lariat.test, which the browser resolves to the server (--host-resolver-rules).

usage: browser_sso.py --server HOST:PORT --shots DIR
"""

import argparse
import asyncio
import sys

from playwright.async_api import async_playwright, expect

CHROMIUM = "/usr/bin/chromium"
PUBLIC = "http://lariat.test"
LOGIN = "gus@example.com"


async def sign_in_with_provider(page, login):
    await page.goto(f"{PUBLIC}/signin")
    await page.get_by_role("button", name="Sign in with Test ID").click()
    # the provider's development screens: a login form, then consent (unless remembered)
    await page.wait_for_load_state()
    if await page.locator("input[name=login]").count():
        await page.fill("input[name=login]", login)
        await page.fill("input[name=password]", "any password")
        await page.locator("button[type=submit]").click()
        await page.wait_for_load_state()
    if not page.url.startswith(PUBLIC):
        await page.locator("button[type=submit]").click()
    await page.wait_for_url(f"{PUBLIC}/chat**")


async def run(server, shots):
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--host-resolver-rules=MAP lariat.test {server}",
    ]
    problems = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=args)
        page = await (await browser.new_context()).new_page()
        blocked = []
        page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
        await sign_in_with_provider(page, LOGIN)
        await page.goto(f"{PUBLIC}/account")
        section = page.get_by_role("region", name="Ways to sign in")
        await expect(section).to_contain_text("Test ID")
        await expect(section).to_contain_text(LOGIN)
        await expect(section).to_contain_text("no password")
        await page.screenshot(path=f"{shots}/sso-account.png", full_page=True)
        await page.get_by_role("button", name="Sign out").first.click()
        await page.wait_for_url(f"{PUBLIC}/signin**")
        await sign_in_with_provider(page, LOGIN)
        await page.goto(f"{PUBLIC}/account")
        await expect(page.locator("header")).to_contain_text(LOGIN)
        if blocked:
            problems.append(f"the policy blocked something: {blocked}")
        await browser.close()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--shots", required=True)
    args = parser.parse_args()
    asyncio.run(run(args.server, args.shots))


if __name__ == "__main__":
    main()
