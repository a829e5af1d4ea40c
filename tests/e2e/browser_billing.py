"""Billing in Debian's Chromium, driven by Playwright, against `lariat serve` billing through the
fake Stripe (tests/src/fake_stripe.rs): a new user sees the free plan, upgrades to pro through the
fake hosted Checkout and comes back to the pro plan and its allowance, then cancels through the
fake Customer Portal and is back on free; an admin reads the analytics page with the revenue.
Each page is scanned with axe-core (no serious or critical violation) and photographed.

usage: browser_billing.py --base URL --shots DIR --axe PATH/axe.min.js --admin EMAIL
                          --admin-password PW --pro-messages N --free-messages N
"""

import argparse
import asyncio
import re
import sys

from playwright.async_api import async_playwright, expect

from browser_journeys import ARGS, CHROMIUM, PASSWORD, Journeys


async def run(args, journeys):
    base = args.base.rstrip("/")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = await browser.new_context()
        page = await context.new_page()
        await journeys.sign_up(page, "buyer@example.com")

        await page.get_by_role("link", name="Billing", exact=True).click()
        await expect(page.locator("#current-plan")).to_have_text("free")
        await journeys.audit(page, "billing-free")

        # upgrade: Lariat sends the browser to Checkout; paying brings it back, on pro
        await page.get_by_role("button", name="Choose pro, billed monthly").click()
        await expect(page).to_have_title(re.compile("Pay for price_pro_monthly"))
        await page.get_by_role("button", name="Subscribe").click()
        await expect(page).to_have_url(re.compile(r"/billing\?checkout=done$"))
        await expect(page.get_by_role("status")).to_contain_text("Thank you")
        await expect(page.locator("#current-plan")).to_have_text("pro")
        await expect(page.get_by_role("cell", name="paid")).to_be_visible()
        await journeys.audit(page, "billing-pro")

        # the allowance follows the plan
        await page.get_by_role("link", name="Account", exact=True).click()
        await expect(page.get_by_text(f"Messages: 0 of {args.pro_messages}")).to_be_visible()

        # downgrade: the Portal cancels, the plan is free again
        await page.get_by_role("link", name="Billing", exact=True).click()
        await page.get_by_role("button", name="Manage subscription").click()
        await expect(page).to_have_title("Manage your plan")
        await page.get_by_role("button", name="Cancel plan").click()
        await expect(page).to_have_url(re.compile(r"/billing$"))
        await expect(page.locator("#current-plan")).to_have_text("free")
        await page.get_by_role("link", name="Account", exact=True).click()
        await expect(page.get_by_text(f"Messages: 0 of {args.free_messages}")).to_be_visible()

        # a plain user never reaches the analytics
        response = await page.goto(base + "/admin/analytics")
        if response.status != 403:
            journeys.problems.append(f"/admin/analytics for a user: {response.status}")
        await context.close()

        # the admin reads who paid what
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(base + "/signin")
        await page.get_by_label("Email").fill(args.admin)
        await page.get_by_label("Password").fill(args.admin_password)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_role("link", name="Analytics").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Analytics")
        row = page.get_by_role("row", name=re.compile(r"^pro\b"))
        await expect(row).to_contain_text("29.00 USD")
        await journeys.audit(page, "analytics")
        await browser.close()


async def main():
    parser = argparse.ArgumentParser()
    for name in ["--base", "--shots", "--axe", "--admin", "--admin-password", "--pro-messages", "--free-messages"]:
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    with open(args.axe, encoding="utf-8") as f:
        axe_source = f.read()
    journeys = Journeys(args.base.rstrip("/"), args.shots, axe_source, args.admin, args.admin_password, None)
    await run(args, journeys)
    if journeys.problems:
        print("\n".join(journeys.problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
