"""The dashboard in a real browser (headless Chromium): log in, every page against the hub's own
answers, a private repo invisible, a hostile card inert, forms without CSRF refused, admin forms, and
a screenshot of each page (``test-artifacts/dashboard/``)."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, expect

from fmstack.data.format import read_manifest
from tests.server.dashboard.conftest import Seeded, login, screenshot


def _fits(page: Page, width: int) -> bool:
    """Nothing but scroll boxes (wide tables, the graph) is wider than the viewport."""
    return bool(page.evaluate(f"document.documentElement.scrollWidth <= {width} + 1"))


def test_every_page_shows_what_the_hub_holds(context: BrowserContext, seeded: Seeded) -> None:
    page, url, hub = context.new_page(), seeded.url, seeded.hub
    login(page, url, seeded.tokens["alice"])
    expect(page.get_by_text("Signed in as")).to_contain_text("alice")
    # Home: counts and recent versions of what alice may read (bob/secret is not hers).
    counts = page.locator(".counts")
    expect(counts).to_contain_text("2 models")
    expect(counts).to_contain_text("1 datasets")
    expect(counts).to_contain_text("4 versions")
    expect(page.locator("#recent-h + div")).to_contain_text("acme/clf-int8:1")
    screenshot(page, "home")
    # Search by keyboard: the box is labelled and reachable; a card's words find the repo.
    page.get_by_label("Search repos").focus()
    page.keyboard.type("intent classifier")
    page.keyboard.press("Enter")
    expect(page.locator("table.results")).to_contain_text("acme/clf")
    expect(page.locator("table.results")).to_contain_text("card")
    screenshot(page, "search")
    # Repo: versions table, alias and its log, files, snippets.
    page.goto(f"{url}/repos/acme/clf")
    versions = hub.versions("acme/clf")
    for v in versions:
        expect(page.locator("#versions-h + div")).to_contain_text(v.digest[:12])
    expect(page.locator("#aliases-h ~ ul")).to_contain_text("@production → 2")
    expect(page.locator(".snippet").first).to_contain_text(f"fmstack --hub {url} hub pull acme/clf")
    expect(page.locator("#files-h + div")).to_contain_text("model.safetensors")
    assert _fits(page, 1280)
    screenshot(page, "repo")
    # Version: lineage picture with linked nodes; up to the dataset, down to the compressed model.
    page.goto(f"{url}/repos/acme/clf/versions/2")
    graph = page.locator("svg.lineage")
    expect(graph).to_contain_text("acme/raw:1")
    expect(graph).to_contain_text("acme/clf-int8:1")
    expect(graph).to_contain_text("@production")
    expect(graph).to_contain_text(f"run {seeded.runs['train2']} train")
    screenshot(page, "version")
    page.locator("svg.lineage a[href='/repos/acme/clf-int8/versions/1']").click()
    expect(page.locator("h1")).to_contain_text("acme/clf-int8:1")
    # Dataset version: rows per split from the manifest, labels, histogram, rows, rejected reasons.
    page.goto(f"{url}/repos/acme/raw/versions/1/data")
    manifest = read_manifest(hub.checkout(seeded.dataset))
    for split, info in manifest.splits.items():
        expect(
            page.locator("#splits-h + table").get_by_role("row", name=f"{split} {info.rows}")
        ).to_be_visible()
    labels = page.locator("#labels-h + div svg rect")
    expect(labels).to_have_count(3)
    expect(page.locator("#labels-h + div svg")).to_contain_text("sport")
    assert page.locator("#lengths-h + div svg rect").count() >= 2
    expect(page.locator("#rows-h + div")).to_contain_text("the ball goal team match number 0")
    rejected = page.locator("#rejected-h ~ ul")
    expect(rejected).to_contain_text("empty_text: 1")
    expect(rejected).to_contain_text("unparseable: 1")
    screenshot(page, "dataset")
    # Run: status, spec, environment, logs (as text), one chart per metric, eval points marked.
    run_id = seeded.runs["train1"]
    page.goto(f"{url}/runs/{run_id}")
    expect(page.locator("h1")).to_contain_text("succeeded")
    expect(page.locator("#spec-h + pre")).to_contain_text('"method": "lora"')
    expect(page.locator("pre.logs")).to_contain_text("<b>not bold</b>")
    names = sorted({m.name for m in hub.runs.metrics(run_id)})
    expect(page.locator("figure figcaption")).to_have_text(["loss", "eval_accuracy", "lr"])
    assert names == ["eval_accuracy", "loss", "lr"]
    expect(page.locator("figure svg circle")).to_have_count(2)  # the two evaluations ...
    expect(page.locator("figure svg path.mark")).to_have_count(4)  # ... marked on loss and lr too
    screenshot(page, "run")
    # Runs list -> compare two runs: curves overlaid, one line per run in each chart.
    page.goto(f"{url}/runs")
    page.get_by_label(f"compare run {seeded.runs['train1']}").check()
    page.get_by_label(f"compare run {seeded.runs['train2']}").check()
    screenshot(page, "runs")
    page.get_by_role("button", name="Compare selected").click()
    expect(page.locator("figure").first.locator("polyline")).to_have_count(2)
    expect(page.locator("figure").first).to_contain_text(f"run {seeded.runs['train2']}")
    screenshot(page, "compare")


def test_pages_are_readable_on_a_phone(browser: Browser, seeded: Seeded) -> None:
    phone = browser.new_context(viewport={"width": 375, "height": 800})
    try:
        page = phone.new_page()
        for path, name in (
            ("/", "home"),
            ("/repos/acme/clf/versions/2", "version"),
            ("/repos/acme/raw/versions/1/data", "dataset"),
            ("/repos/acme/clf", "repo"),
            (f"/runs/{seeded.runs['train1']}", "run"),
            ("/login", "login"),
        ):
            page.goto(seeded.url + path)
            assert _fits(page, 375), path
            screenshot(page, f"phone-{name}")
    finally:
        phone.close()


def test_private_repo_of_another_user_is_invisible(context: BrowserContext, seeded: Seeded) -> None:
    page, url = context.new_page(), seeded.url
    for who in ("anonymous", "alice"):
        if who == "alice":
            login(page, url, seeded.tokens["alice"])
        page.goto(f"{url}/repos/bob/secret")
        expect(page.locator(".error")).to_have_text(
            "no repo named 'bob/secret'; `fmstack hub ls` lists the repos in this hub"
        )
        missing = page.goto(f"{url}/repos/bob/missing")
        assert missing is not None and missing.status == 404
        page.goto(f"{url}/?q=zebra")
        expect(page.locator("#results-h + p")).to_have_text("Nothing matches.")
        page.goto(f"{url}/?q=bob")
        expect(page.locator("#results-h + p")).to_have_text("Nothing matches.")
        page.goto(f"{url}/repos/acme/raw/versions/1")
        expect(page.locator("svg.lineage")).to_contain_text("acme/clf:1")
        assert "bob/secret" not in page.content()
        run = page.goto(f"{url}/runs/{seeded.runs['secret']}")
        assert run is not None and run.status == 404
        page.goto(f"{url}/runs")
        assert f'/runs/{seeded.runs["secret"]}"' not in page.content()
    # Bob sees his own repo everywhere: the checks above look in the right places.
    bob = context.browser.new_context() if context.browser else None
    assert bob is not None
    try:
        page = bob.new_page()
        login(page, url, seeded.tokens["bob"])
        page.goto(f"{url}/?q=zebra")
        expect(page.locator("table.results")).to_contain_text("bob/secret")
        page.goto(f"{url}/repos/acme/raw/versions/1")
        expect(page.locator("svg.lineage")).to_contain_text("bob/secret:1")
    finally:
        bob.close()


def test_a_card_with_script_runs_nothing(context: BrowserContext, seeded: Seeded) -> None:
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{seeded.url}/repos/acme/clf/versions/1")
    page.goto(f"{seeded.url}/repos/acme/clf")  # the repo page shows the latest card too
    card = page.locator("article.card")
    expect(card.locator("table")).to_contain_text("accuracy")  # Markdown is rendered ...
    expect(card).to_contain_text("<script>alert('card script')</script>")  # ... HTML shown as text
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    assert page.evaluate("document.querySelectorAll('[onerror], img').length") == 0
    assert (
        page.evaluate(
            "[...document.querySelectorAll('a')].filter(a => a.href.startsWith('javascript')).length"
        )
        == 0
    )
    page.wait_for_timeout(300)
    assert dialogs == []
    response = httpx.get(f"{seeded.url}/repos/acme/clf", timeout=60)
    assert "script-src" not in response.headers["content-security-policy"]  # default-src 'none' applies
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_forms_without_the_csrf_token_are_refused(context: BrowserContext, seeded: Seeded) -> None:
    page, url = context.new_page(), seeded.url
    login(page, url, seeded.tokens["admin"])
    # The browser holds a valid session; a forged form (no token, or a wrong one) changes nothing.
    for form in ({"name": "mallory"}, {"name": "mallory", "csrf": "0" * 64}):
        refused = context.request.post(f"{url}/admin/users", form=form)
        assert refused.status == 403, refused.text()
        assert "CSRF" in refused.text()
    assert "mallory" not in [a.name for a in seeded.accounts.ls("user")]
    assert context.request.post(f"{url}/logout", form={}).status == 403
    page.goto(f"{url}/")
    expect(page.get_by_text("Signed in as")).to_contain_text("admin")  # still logged in
    # The login form needs its token too (a page elsewhere cannot log a visitor in as someone else).
    fresh = httpx.post(f"{url}/login", data={"token": seeded.tokens["alice"]}, timeout=60)
    assert fresh.status_code == 403
    assert "fmstack_session" not in fresh.headers.get("set-cookie", "")


def test_admin_manages_accounts_and_tokens(browser: Browser, context: BrowserContext, seeded: Seeded) -> None:
    page, url = context.new_page(), seeded.url
    login(page, url, seeded.tokens["admin"])
    page.get_by_role("link", name="Admin").click()
    page.get_by_label("New user").fill("carol")
    page.get_by_role("button", name="Add user").click()
    expect(page.locator(".ok")).to_contain_text("added user carol")
    page.get_by_label("New organisation").fill("lab")
    page.get_by_role("button", name="Add organisation").click()
    page.get_by_label("Organisation", exact=True).select_option("lab")
    page.get_by_label("User", exact=True).first.select_option("carol")
    page.get_by_label("Role").select_option("write")
    page.get_by_role("button", name="Add or change member").click()
    assert seeded.accounts.get("lab").members == {"carol": "write"}
    # A token is shown once, works for logging in, and revoking it ends that session.
    page.locator("#token-user").select_option("carol")
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    token = page.get_by_label("Token", exact=True).input_value()
    assert re.fullmatch(r"fmk_[0-9a-f]{12}_\S{43}", token)
    screenshot(page, "admin")
    page.goto(f"{url}/admin")
    assert token not in page.content()
    carol = browser.new_context()
    try:
        carol_page = carol.new_page()
        login(carol_page, url, token)
        expect(carol_page.get_by_text("Signed in as")).to_contain_text("carol")
        prefix = token.split("_")[1]
        page.get_by_role("button", name=f"revoke token {prefix}").click()
        expect(page.locator(".ok")).to_contain_text(f"revoked token {prefix} of carol")
        carol_page.goto(f"{url}/")
        expect(carol_page.locator(".error")).to_contain_text("no longer valid")
        expect(carol_page.get_by_label("Access token")).to_be_visible()
    finally:
        carol.close()
    # Not an administrator: the admin page is refused.
    assert [e.action for e in seeded.accounts.audit_log(limit=10, actor="admin")][:2] == [
        "token-revoke",
        "token-create",
    ]
    alice = browser.new_context()
    try:
        alice_page = alice.new_page()
        login(alice_page, url, seeded.tokens["alice"])
        refused = alice_page.goto(f"{url}/admin")
        assert refused is not None and refused.status == 403
    finally:
        alice.close()
