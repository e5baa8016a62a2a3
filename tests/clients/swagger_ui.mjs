// Open the service's Swagger UI in headless Chromium and check three things.
// The page loads every asset from the service itself with no failed request.
// It lists every operation. "Try it out" on CreateUser creates a user that the
// API then returns.
//
// Usage: node swagger_ui.mjs http://127.0.0.1:PORT SCREENSHOT.png
// Needs Debian's chromium at /usr/bin/chromium (or CHROMIUM_PATH).
import { chromium } from "playwright-core";

const [baseUrl, screenshotPath] = process.argv.slice(2);
if (!baseUrl || !screenshotPath) {
  console.error("usage: node swagger_ui.mjs BASE_URL SCREENSHOT_PATH");
  process.exit(2);
}
const origin = new URL(baseUrl).origin;
const expectedOperations = ["CreateUser", "ListUsers", "GetUser", "UpdateUser", "DeleteUser"];
const timeoutMs = 30_000;

let failures = 0;
function check(condition, description, detail = "") {
  console.log(`${condition ? "ok" : "not ok"} - ${description}${detail && !condition ? `: ${detail}` : ""}`);
  if (!condition) {
    failures += 1;
  }
}

// Without the background-networking flags Chromium tries to reach Google's
// hosts at start, which this sandbox refuses.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
  timeout: timeoutMs,
});

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
  page.setDefaultTimeout(timeoutMs);

  const foreignRequests = [];
  const failedRequests = [];
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.protocol !== "data:" && url.protocol !== "blob:" && url.origin !== origin) {
      foreignRequests.push(request.url());
    }
  });
  page.on("requestfailed", (request) => failedRequests.push(`${request.url()} (${request.failure()?.errorText})`));
  page.on("response", (response) => {
    // The 201 of "Try it out" is expected; any other 4xx or 5xx is a broken page.
    if (response.status() >= 400) {
      failedRequests.push(`${response.url()} (${response.status()})`);
    }
  });

  const docs = await page.goto(`${baseUrl}/docs`, { waitUntil: "networkidle" });
  check(docs?.status() === 200, "GET /docs returns 200", `status ${docs?.status()}`);

  await page.locator(".opblock").first().waitFor();
  const operationIds = await page.locator(".opblock").evaluateAll((blocks) =>
    blocks.map((block) => block.id.replace(/^operations-[^-]+-/, "")),
  );
  for (const operationId of expectedOperations) {
    check(operationIds.includes(operationId), `Swagger UI lists ${operationId}`, `found ${operationIds.join(", ")}`);
  }

  const create = page.locator("#operations-Users-CreateUser");
  await create.locator(".opblock-summary").click();
  await create.getByRole("button", { name: "Try it out" }).click();
  const name = `swagger-ui-${Date.now()}`;
  await create.locator("textarea.body-param__text").fill(JSON.stringify({ name, type: "USER_TYPE_USER" }, null, 2));
  await create.getByRole("button", { name: "Execute" }).click();

  const statusCell = create.locator(".live-responses-table .response .response-col_status").first();
  await statusCell.waitFor();
  const status = (await statusCell.innerText()).trim();
  check(status.startsWith("201"), "Try it out on CreateUser returns 201", `got ${status}`);

  const responseBody = await create.locator(".live-responses-table .response-col_description pre").first().innerText();
  let created = {};
  try {
    created = JSON.parse(responseBody);
  } catch (error) {
    check(false, "Try it out shows the created user as JSON", `${error}: ${responseBody.slice(0, 200)}`);
  }
  check(created.name === name, "the response shows the new user's name", `got ${created.name}`);

  if (created.id) {
    const fetched = await fetch(`${baseUrl}/v1/users/${created.id}`);
    const user = await fetched.json();
    check(fetched.status === 200 && user.name === name, "GET /v1/users/{id} returns the user created in Swagger UI",
      `status ${fetched.status}, body ${JSON.stringify(user)}`);
  }

  await statusCell.scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshotPath, fullPage: false });
  console.log(`screenshot: ${screenshotPath}`);

  check(failedRequests.length === 0, "no request failed", failedRequests.join(", "));
  check(foreignRequests.length === 0, `every request went to ${origin}`, foreignRequests.join(", "));
} finally {
  await browser.close();
}

console.log(failures === 0 ? "swagger-ui: every check passed" : `swagger-ui: ${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
