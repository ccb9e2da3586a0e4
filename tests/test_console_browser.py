"""The dev console in a real headless Chromium (Debian's, driven by Playwright): run a
function, watch an SDK's publish arrive live with its diff, edit KV and see a function
read it, subscribe and see a message, save an execution as a scenario that `pfunc test`
passes. One browser and one dev server for the module. PFUNC_SCREENSHOTS=1 writes the
screenshots in docs/console/."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.dev_harness import InProcessDev
from tests.sdk.pysdk import py_client
from tests.test_console import write_project

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).exists()),
    None,
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium at /usr/bin/chromium (apt-get install chromium)"
)
SHOTS = Path(__file__).parent.parent / "docs" / "console"
KEYS = ("pub-c-demo", "sub-c-demo")


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("console")
    write_project(folder)
    server = InProcessDev(folder)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def page(dev: InProcessDev):
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True)
        tab = browser.new_page(viewport={"width": 1280, "height": 800})
        tab.set_default_timeout(5_000)
        tab.goto(dev.base + "/")
        yield tab
        browser.close()


def shot(page, name: str) -> None:
    if os.environ.get("PFUNC_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"))


def view(page, name: str) -> None:
    page.click(f"nav a.tab-{name}")


def test_functions_view_lists_the_project(page) -> None:
    page.wait_for_selector(".card.function[data-name=greet] .state.loaded")
    assert "chat" in page.inner_text(".card.function[data-name=greet]")
    # Loaded at start: said so (nothing was, until a first reload).
    assert page.inner_text(".card.function[data-name=greet] .load-time").startswith("loaded at")
    page.wait_for_selector(".live.ok")


def test_a_save_that_fails_to_load_says_which_version_serves(page, dev: InProcessDev) -> None:
    """It said "reloaded at" beside "failed to load", as if the failed save had loaded."""
    handler = dev.folder / "handlers" / "api.js"
    good = handler.read_text()
    page.goto(dev.base + "/#functions")
    try:
        handler.write_text(
            "export default (request, response) => {\n  return response.send(;\n};\n"
        )
        page.wait_for_selector(".card.function[data-name=api] .state.failed", timeout=15_000)
        said = page.inner_text(".card.function[data-name=api] .load-time")
        assert said.startswith("failed to load at") and "keeps serving" in said, said
    finally:
        handler.write_text(good)
    page.wait_for_selector(".card.function[data-name=api] .state.loaded", timeout=15_000)


def test_run_view_runs_a_function(page) -> None:
    view(page, "run")
    page.select_option("select.run-function", "greet")
    page.click("button:has-text('Template')")  # a user's chat message, as handlers read one
    template = json.loads(page.input_value("textarea.event"))
    assert template["message"] == {"userId": "pfunc-console", "text": "hello"}
    page.fill("textarea.event", '{"message": {"text": "from the run view"}, "channel": "chat"}')
    page.click("button.run")
    result = page.wait_for_selector(".run-result .detail")
    assert "ok" in result.inner_text()
    page.wait_for_selector(".run-result .diff-added")  # greeting and n were added
    assert "operations: 3 of 3" in result.inner_text().lower()  # the classic budget
    # How the detail words each of the contract's budget forms (it once printed
    # "[object Object]" for pubnub-2026's per-kind ones).
    worded = page.evaluate(
        """async () => {
          const { budgetText } = await import("/pfunc/console/assets/detail.js");
          return [3, { kvstore: 10, xhr: 5 }, { kvstore: null, xhr: null }].map(budgetText);
        }"""
    )
    assert worded == [" of 3", " (per kind: kvstore 10, xhr 5)", " (no limit)"]
    shot(page, "run")


def test_sdk_publish_appears_live_with_its_diff(page, dev: InProcessDev) -> None:
    view(page, "executions")
    client = py_client(dev.port, KEYS, "sdk-user")
    try:
        client.publish().channel("chat").message({"text": "from the sdk"}).sync()
    finally:
        client.stop()
    # It arrives on its own (server-sent events): the run view's execution, then this one.
    page.wait_for_function(
        "[...document.querySelectorAll('tr.execution')]"
        ".filter((row) => row.textContent.includes('chat')).length >= 2"
    )
    page.locator("tr.execution", has_text="chat").first.click()
    page.wait_for_selector(".pane .detail >> text=from the sdk")
    assert "greeting" in page.inner_text(".pane table.diff")
    shot(page, "executions")


def test_kv_edit_is_what_a_function_reads(page) -> None:
    new_item(page, "greeting", "{bad json")
    page.wait_for_selector(".kv-message.error")
    page.fill("textarea.kv-value", '{"word": "hola"}')
    page.click("button.kv-save")
    page.wait_for_selector("tr.kv-row[data-key=greeting] >> text=hola")
    page.wait_for_selector("tr.kv-row[data-key=last]")  # written by the earlier executions
    shot(page, "kv")
    view(page, "run")
    page.select_option("select.run-function", "greet")
    page.fill("textarea.event", '{"message": {"text": "read kv"}}')
    page.click("button.run")
    page.wait_for_selector('.run-result pre.after:has-text("hola")')


def test_channels_subscribe_and_see_a_message(page) -> None:
    view(page, "channels")
    page.fill("input.sub-channels", "chat")
    page.click("button.subscribe")
    page.wait_for_selector(".subscribed")
    page.wait_for_timeout(300)  # the first long-poll (its timetoken) is under way
    page.fill("input.pub-channel", "chat")
    page.fill("textarea.pub-message", '{"text": "typed in the page"}')
    page.click("button.publish")
    delivery = page.wait_for_selector("tr.delivery.message >> text=typed in the page")
    assert "hola" in delivery.inner_text()  # it went through the before-publish function
    page.click("button.history")
    page.wait_for_selector(".history-rows >> text=typed in the page")
    shot(page, "channels")
    # Another view and back: the subscription and what it received are still there.
    view(page, "executions")
    page.wait_for_selector("tr.execution")
    view(page, "channels")
    page.wait_for_selector(".subscribed", state="visible")
    assert page.locator("tr.delivery.message >> text=typed in the page").count() == 1
    # A change that names nothing is refused and leaves the subscription listening.
    page.fill("input.sub-channels", ",,,")
    page.click("button.subscribe")
    page.wait_for_selector('p.error:has-text("name a channel or a group")')
    page.fill("textarea.pub-message", '{"text": "still listening"}')
    page.click("button.publish")
    page.wait_for_selector("tr.delivery.message >> text=still listening")
    assert page.locator(".subscribed").is_visible()


def test_a_subscribe_failure_shows_until_the_server_answers_again(page) -> None:
    view(page, "channels")
    page.route("**/v2/subscribe/**", lambda route: route.abort())  # the server unreachable
    page.fill("input.sub-channels", "chat.back")
    page.click("button.subscribe")
    page.wait_for_selector(".subscribe-problem")
    page.fill("input.pub-channel", "chat.back")
    page.fill("textarea.pub-message", '{"text": "while away"}')
    page.click("button.publish")  # a publish that works says nothing of the subscription
    page.wait_for_timeout(300)
    assert page.locator(".subscribe-problem").is_visible()
    page.unroute("**/v2/subscribe/**")
    page.wait_for_selector(".subscribe-problem", state="detached")  # back: said at once
    page.fill("textarea.pub-message", '{"text": "after the return"}')
    page.click("button.publish")
    page.wait_for_selector("tr.delivery.message >> text=after the return")


def test_save_as_scenario_passes_pfunc_test(page, dev: InProcessDev) -> None:
    view(page, "executions")
    page.locator("tr.execution", has_text="greet").first.click()
    page.fill("input.scenario-file", "tests/from_console.test.toml")
    page.click("button.save-scenario")
    page.wait_for_selector(".saved")
    saved = dev.folder / "tests" / "from_console.test.toml"
    assert saved.is_file()
    run = subprocess.run(
        [str(Path(sys.executable).parent / "pfunc"), "test", str(saved)],
        cwd=dev.folder,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    # Saved once: the button says so, and another execution shows its own, unsaved.
    assert page.locator("button.save-scenario").is_disabled()
    page.locator("tr.execution:not(.selected)").first.click()
    assert page.locator(".saved").count() == 0
    # The first again, saved to the same file: refused, as a second scenario of one name
    # would stop the whole file.
    page.locator("tr.execution", has_text="greet").first.click()
    page.fill("input.scenario-file", "tests/from_console.test.toml")
    page.click("button.save-scenario")
    page.wait_for_selector('.save .error:has-text("already has a scenario named")')
    # A name the file system refuses is said as such (it was a 500 with the OS's words).
    page.fill("input.scenario-file", "tests/" + "a" * 300 + ".test.toml")
    page.click("button.save-scenario")
    page.wait_for_selector('.save .error:has-text("cannot write it: File name too long")')
    # A folder of that name, or a name with a NUL: refused as such (both were 500s).
    (dev.folder / "tests" / "folder.test.toml").mkdir()
    page.fill("input.scenario-file", "tests/folder.test.toml")
    page.click("button.save-scenario")
    page.wait_for_selector('.save .error:has-text("cannot write it: it is not a file")')
    entry = dev.server.console.hub.entries[-1]
    for file in ("tests/folder.test.toml", "tests/a\0b.test.toml"):
        request = json.dumps({"id": entry.id, "file": file}).encode()
        status, _, body = dev.request("POST", "/pfunc/console/scenario", request)
        assert status == 400, body
    again = subprocess.run(
        [str(Path(sys.executable).parent / "pfunc"), "test", str(saved)],
        cwd=dev.folder,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0 and "1 passed" in again.stdout


def test_an_execution_from_before_a_save_is_not_saved_as_a_scenario(
    page, dev: InProcessDev
) -> None:
    """The replay reads the files as they are now: after a save it would check other
    code (dev --record wrote weakened scenarios, or none, that way), so it says so."""
    view(page, "executions")
    dev.type('run greet {"message": {"text": "before the save"}}')
    row = page.locator("tr.execution", has_text="greet").first
    row.click()
    handler = dev.folder / "handlers" / "greet.js"
    handler.write_text(handler.read_text())  # saved again, unchanged: a save all the same
    page.wait_for_timeout(400)  # the watcher has seen it
    page.fill("input.scenario-file", "tests/after_save.test.toml")
    page.click("button.save-scenario")
    page.wait_for_selector('.save .error:has-text("was saved after it ran")')
    assert not (dev.folder / "tests" / "after_save.test.toml").exists()


def test_a_save_no_function_runs_leaves_earlier_executions_saveable(
    page, dev: InProcessDev
) -> None:
    """A web client's .js saved beside the functions (no function runs it) counted as a
    save of the project: every earlier execution was refused as a scenario."""
    view(page, "executions")
    state = dev.server.state  # (an earlier test's save of greet.js reloaded first)
    for _ in range(100):
        if state.ran_current_code(time.time() * 1000):
            break
        time.sleep(0.05)
    dev.type('run greet {"message": {"text": "before the web client"}}')
    (dev.folder / "public").mkdir(exist_ok=True)
    (dev.folder / "public" / "app.js").write_text("console.log('the web client');\n")
    page.wait_for_timeout(400)  # the watcher has seen it
    open_newest(page, "before the web client")
    page.fill("input.scenario-file", "tests/web_client.test.toml")
    page.click("button.save-scenario")
    page.wait_for_selector(".saved, .save .error")
    assert page.locator(".saved").count() == 1, page.inner_text(".save")
    assert (dev.folder / "tests" / "web_client.test.toml").is_file()


def run_greets(page, dev: InProcessDev, texts: list[str]) -> None:
    """Run greet with each text, one after another: the newest is then the last one."""
    for text in texts:
        dev.type(f'run greet {{"message": {{"text": "{text}"}}}}')
        dev.wait_for(
            lambda e, t=text: e["type"] == "execution" and e.get("message", {}).get("text") == t
        )


def open_newest(page, text: str) -> None:
    """Open the newest row once the stream delivered the execution saying `text`."""
    for _ in range(50):
        page.locator("tr.execution").first.click()
        if text in page.inner_text(".pane"):
            break
        page.wait_for_timeout(100)
    assert text in page.inner_text(".pane")


def test_the_page_keeps_only_the_newest(page, dev: InProcessDev) -> None:
    page.goto(dev.base + "/?keep=3#executions")
    page.wait_for_selector(".count")
    run_greets(page, dev, [f"burst {number}" for number in range(6)])
    page.wait_for_function(
        "document.querySelector('.count').textContent.startsWith('3 of 3 kept')"
        " && document.querySelector('tr.execution').dataset.id > 0"
    )
    open_newest(page, "burst 5")
    assert page.locator("tr.execution").count() == 3
    view(page, "functions")
    shot(page, "functions")


def test_the_page_keeps_no_more_text_than_its_budget(page, dev: InProcessDev) -> None:
    """The page kept 1,000 entries whatever their size: executions that each logged a
    megabyte held gigabytes in the tab. It keeps about as much text as it is given
    (`?keep_text=`, 64 Mi characters by default), and the newest entry always."""
    page.goto(dev.base + "/?keep_text=20000#executions")
    page.wait_for_selector(".count")
    run_greets(page, dev, [f"big {number} " + "x" * 6000 for number in range(6)])
    open_newest(page, "big 5 ")
    kept = page.inner_text(".count")
    assert re.match(r"[1-3] of [1-3] kept", kept), kept
    assert 1 <= page.locator("tr.execution").count() <= 3


def test_a_404_row_opens_and_the_console_keeps_working(page, dev: InProcessDev) -> None:
    """A request no function answers is listed; opening it once broke every click after."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(dev.base + "/#executions")
    page.wait_for_selector(".count")
    dev.request("GET", "/v1/blocks/sub-key/sub-c-demo/nothing-here")
    page.locator("tr.execution", has_text="nothing-here").first.click()
    page.wait_for_selector(".pane .detail >> text=no function or endpoint answers this path")
    dev.type('run greet {"message": {"text": "after the 404"}}')
    dev.wait_for(
        lambda e: e["type"] == "execution" and e.get("message", {}).get("text") == "after the 404"
    )
    for _ in range(50):  # the newest greet row, once the stream delivered it
        page.locator("tr.execution", has_text="greet").first.click()
        if "after the 404" in page.inner_text(".pane"):
            break
        page.wait_for_timeout(100)
    assert "after the 404" in page.inner_text(".pane")
    assert errors == []


def test_a_failed_request_shows_the_status_its_client_got(page, dev: InProcessDev) -> None:
    """The row and the detail of an on-request execution that failed showed no status:
    its client got a 500 (a 503 at the time limit) that the console did not show."""
    page.goto(dev.base + "/#executions")
    page.wait_for_selector(".count")
    dev.request("GET", "/v1/blocks/sub-key/sub-c-demo/api?fail=1")
    row = page.locator("tr.execution", has_text="error").filter(has_text="api").first
    row.wait_for()
    assert "500" in row.inner_text()
    row.click()
    page.wait_for_selector(".pane .detail >> text=answered by pfunc dev: the function failed")
    assert "500" in page.inner_text(".pane .detail .status")


def test_the_filters_pick_by_function_and_outcome(page, dev: InProcessDev) -> None:
    page.goto(dev.base + "/#executions")
    dev.request("GET", "/v1/blocks/sub-key/sub-c-demo/api")
    dev.type('run greet {"message": {"text": "filtered"}}')
    page.wait_for_selector("tr.execution >> text=api")
    page.wait_for_selector("tr.execution >> text=greet")
    page.select_option("select.filter-function", "api")
    page.wait_for_function(
        "[...document.querySelectorAll('tr.execution')].every((r) => r.textContent.includes('api'))"
    )
    page.select_option("select.filter-function", "")
    page.select_option("select.filter-outcome", "response")
    # (The page renders a filter's change after the event: wait for it, not the old rows.)
    page.wait_for_function(
        "(rows => rows.length > 0 && rows.every((r) => r.textContent.includes('response')))"
        "([...document.querySelectorAll('tr.execution')])"
    )


def test_a_run_is_the_executions_entry_with_its_own_event(page) -> None:
    """Once the stream brings it, a run shows the event as received (a presence event's
    message is built from its fields) and can be saved as a scenario."""
    view(page, "run")
    page.select_option("select.run-function", "greet")
    page.fill("textarea.event", '{"message": {"text": "ran by hand"}, "channel": "chat"}')
    page.click("button.run")
    page.wait_for_selector(".run-result button.save-scenario")
    assert "ran by hand" in page.inner_text(".run-result")


def new_item(page, key: str, value: str, ttl: str | None = None) -> None:
    """Fill the KV view's New form and save it."""
    view(page, "kv")
    page.click("button.kv-new")
    page.fill("input.kv-key", key)
    page.fill("textarea.kv-value", value)
    if ttl is not None:
        page.fill("input.kv-ttl", ttl)
    page.click("button.kv-save")


def test_kv_refuses_a_ttl_that_is_no_number_and_an_edit_keeps_the_ttl(page) -> None:
    new_item(page, "timed", '"v"', ttl="abc")
    page.wait_for_selector(".kv-message.error >> text=is not a number of minutes")
    page.fill("input.kv-ttl", "3")
    page.click("button.kv-save")
    page.wait_for_selector("tr.kv-row[data-key=timed]")
    page.locator("tr.kv-row[data-key=timed] button.kv-edit-button").click()
    assert page.input_value("input.kv-ttl") == "3"
    # An item's key is not edited (a changed key wrote a copy and kept the old one).
    assert page.locator("input.kv-key").get_attribute("readonly") is not None
    # Delete asks first: dismissed, the item stays; accepted, it goes.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("tr.kv-row[data-key=timed] button.kv-delete").click()
    page.wait_for_timeout(300)
    assert page.locator("tr.kv-row[data-key=timed]").count() == 1
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tr.kv-row[data-key=timed] button.kv-delete").click()
    page.wait_for_selector("tr.kv-row[data-key=timed]", state="detached")


def test_kv_values_and_counters_show_and_edit_exactly_as_stored(page, dev: InProcessDev) -> None:
    """The browser's JSON.parse rounds integers past 2^53: the page showed such values
    rounded, and an edit of the TTL alone saved the rounded value."""
    stored = '{"id": 12345678901234567890, "qty": 1.5}'
    new_item(page, "exact", stored)
    row = "tr.kv-row[data-key=exact]"
    page.wait_for_selector(row)
    assert "12345678901234567890" in page.inner_text(f"{row} pre")
    page.locator(f"{row} button.kv-edit-button").click()
    assert json.loads(page.input_value("textarea.kv-value")) == json.loads(stored)
    assert "12345678901234567890" in page.input_value("textarea.kv-value")
    page.fill("input.kv-ttl", "5")
    page.click("button.kv-save")
    page.wait_for_selector(".kv-message >> text=set exact: done")
    _, _, body = dev.request("GET", "/pfunc/console/kv?prefix=exact")
    (item,) = json.loads(body)["rows"]
    assert item["text"].replace("\n", "").replace(" ", "") == stored.replace(" ", "")
    assert item["ttl_seconds"] > 240

    # A counter past 2^53 (kvstore takes amounts up to it, so by steps): odd, so no double.
    for amount in (2**53 - 1, 2**53 - 1, 1):
        change = {"op": "incr", "key": "big", "amount": amount}
        assert dev.request("POST", "/pfunc/console/kv", json.dumps(change).encode())[0] == 200
    page.select_option("select.kv-space", "counters")
    page.wait_for_selector("tr.kv-row[data-key=big]")
    assert page.inner_text("tr.kv-row[data-key=big] pre") == str(2**54 - 1)
    page.select_option("select.kv-space", "items")


def test_a_burst_of_kv_writes_is_one_refresh_not_one_each(page, dev: InProcessDev) -> None:
    page.goto(dev.base + "/#kv")
    page.wait_for_selector("table.kv-rows")
    loads: list[str] = []
    page.on("request", lambda r: loads.append(r.url) if "/pfunc/console/kv?" in r.url else None)
    for number in range(60):
        dev.type(f'run greet {{"message": {{"text": "write {number}"}}}}')
    dev.wait_for(
        lambda e: e["type"] == "execution" and e.get("message", {}).get("text") == "write 59",
        timeout=30,
    )
    page.wait_for_timeout(1200)  # the last refresh, at most 500 ms after the last write
    assert 1 <= len(loads) <= 10
    assert page.locator(".kv-message.error").count() == 0


def test_a_pfunc_toml_that_does_not_load_is_shown(page, dev: InProcessDev) -> None:
    config = dev.folder / "pfunc.toml"
    good = config.read_text()
    page.goto(dev.base + "/#functions")
    page.wait_for_selector(".card.function")
    assert "Loading the pfunc console" not in page.inner_text("body")
    try:
        config.write_text(good + "\n[[functions]\n")
        page.wait_for_selector(".project-error >> text=not valid TOML", timeout=15_000)
    finally:
        config.write_text(good)
    page.wait_for_selector(".project-error", state="detached", timeout=15_000)


def test_a_restarted_server_leaves_the_page_its_executions(page, tmp_path) -> None:
    """The page open across a restart keeps what it had (the open execution too) and adds
    the new server's executions after them."""
    write_project(tmp_path)
    first = InProcessDev(tmp_path)
    tab = page.context.browser.new_page()  # the module's browser: one per test run
    tab.set_default_timeout(10_000)
    second = None
    try:
        tab.goto(first.base + "/#executions")
        first.type('run greet {"message": {"text": "before"}}')
        tab.wait_for_function("document.querySelectorAll('tr.execution').length === 1")
        tab.locator("tr.execution").first.click()
        first.stop()
        tab.wait_for_selector(".live.error")  # reconnecting
        second = InProcessDev(tmp_path, port=first.port)
        tab.wait_for_selector(".live.ok")
        second.type('run greet {"message": {"text": "after"}}')
        tab.wait_for_function("document.querySelectorAll('tr.execution').length === 2")
        assert "before" in tab.inner_text(".pane")  # still the execution opened
    finally:
        tab.close()
        if second is not None:
            second.stop()


def test_kv_rows_tell_text_from_numbers_and_keep_their_buttons_in_view(page) -> None:
    new_item(page, "amb-str", '"42"')
    page.wait_for_selector("tr.kv-row[data-key=amb-str]")
    new_item(page, "amb-num", "42")
    page.wait_for_selector("tr.kv-row[data-key=amb-num]")
    assert page.inner_text("tr.kv-row[data-key=amb-str] pre") == '"42"'
    assert page.inner_text("tr.kv-row[data-key=amb-num] pre") == "42"
    long_key = "k" * 245  # allowed (250 in classic): it wraps, Delete stays on screen
    new_item(page, long_key, "1")
    row = page.wait_for_selector(f"tr.kv-row[data-key={long_key}]")
    box = row.query_selector("button.kv-delete").bounding_box()
    assert box is not None and box["x"] + box["width"] <= page.viewport_size["width"]
