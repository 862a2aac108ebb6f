// The reviewer's side of the desk's browser test: drives Debian's Chromium
// through playwright-core. It takes turns with the Rust test one line at a
// time: it reads a line on stdin, does what it says, answers one line on
// stdout. No sleeps: every wait is for something on the page.
//
//   node desk.mjs BASE_URL TOKEN SCREENSHOT_DIR
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { mkdirSync } from "node:fs";

const [base, token, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (line) => process.stdout.write(line + "\n");
const hear = async () => {
  const { value, done } = await lines.next();
  if (done) throw new Error("the test closed the conversation");
  return value.trim().split(" ");
};

const problems = [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  // Nothing outside the desk is fetched: anything else is refused and noted.
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url === base + "/desk" || url.startsWith(base + "/desk/") || url.startsWith(base + "/desk?")) {
      return route.continue();
    }
    problems.push("requested outside the desk: " + url);
    return route.abort();
  });
  const page = await context.newPage();
  page.on("dialog", (dialog) => {
    problems.push("a dialog: " + dialog.message());
    dialog.dismiss();
  });
  page.on("pageerror", (error) => problems.push("a script error: " + error.message));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push("console error: " + message.text());
  });

  // Sign in with the keyboard.
  await page.goto(base + "/desk");
  await page.waitForURL(/\/desk\/sign-in/);
  await page.screenshot({ path: `${shots}/sign-in.png` });
  await page.locator("#token").fill(token);
  await page.keyboard.press("Enter");
  await page.waitForURL(base + "/desk");
  await page.locator("#rows tr.row").nth(1).waitFor();
  await page.evaluate(() => (window.deskTestMarker = "not reloaded"));
  say("signed-in " + (await page.locator("#rows tr.row").count()));

  // Approve flow: the escalation appears live at the top; j, Enter, c, a, Enter.
  let [, id] = await hear();
  const top = page.locator("#rows tr.row").first();
  await page.locator(`#rows tr.row:first-child[data-id="${id}"]`).waitFor();
  if ((await page.evaluate(() => window.deskTestMarker)) !== "not reloaded") problems.push("the queue reloaded");
  if ((await page.locator("#rows tr.row").count()) !== 3) problems.push("the queue does not show three rows");
  await page.keyboard.press("j");
  if ((await top.getAttribute("class")).indexOf("current") < 0) problems.push("j did not choose the top row");
  await page.screenshot({ path: `${shots}/queue.png` });
  await page.keyboard.press("Enter");
  await page.waitForURL(base + "/desk/handoffs/" + id);
  await page.keyboard.press("c");
  await page.locator("#approve:enabled").waitFor();
  await page.screenshot({ path: `${shots}/handoff.png`, fullPage: false });
  await page.keyboard.press("a");
  if ((await page.evaluate(() => document.activeElement.id)) !== "approve") problems.push("a did not focus Approve");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/desk\?done=/);
  const notice = await page.locator(".notice").innerText();
  if (!notice.includes("Ann approved")) problems.push("no approval notice: " + notice);
  say("approved");

  // Deny flow: the next escalation, opened from the live queue, denied with a typed reason.
  let [, second, ...words] = await hear();
  const reason = words.join(" ");
  await page.locator(`#rows tr.row[data-id="${second}"]`).waitFor();
  await page.locator(`#rows tr.row[data-id="${second}"] a.open`).focus();
  await page.keyboard.press("Enter");
  await page.waitForURL(base + "/desk/handoffs/" + second);
  await page.keyboard.press("c");
  await page.locator("#reason:enabled").waitFor();
  await page.keyboard.press("d");
  await page.keyboard.type(reason);
  await page.keyboard.press("Control+Enter");
  await page.waitForURL(/\/desk\?done=/);
  const denied = await page.locator(".notice").innerText();
  if (!denied.includes(reason)) problems.push("no denial notice: " + denied);
  say("denied");

  // The session's journal and the audit state, for the record.
  const [, session] = await hear();
  await page.goto(base + "/desk/sessions/" + session);
  await page.screenshot({ path: `${shots}/session.png` });
  await page.keyboard.press("q");
  await page.waitForURL(base + "/desk");
  await page.goto(base + "/desk/audit");
  await page.locator(".state.intact").waitFor();
  await page.screenshot({ path: `${shots}/audit.png` });
  say(problems.length === 0 ? "ok" : "problems: " + problems.join(" | "));
} catch (error) {
  say("error: " + String(error && error.stack ? error.stack : error).replaceAll("\n", " / "));
  process.exitCode = 1;
} finally {
  await browser.close();
  // The test may keep its end of stdin open; the conversation is over.
  process.stdin.destroy();
}
