// GraphiQL in a real browser: Debian's chromium driven by playwright-core (no browser download).
//
//   node browser.mjs '{"url": "http://127.0.0.1:PORT", "typed": "...", "login": "...",
//                      "createPost": "...", "rounds": 5}'
//
// Every request that is not for 127.0.0.1 is blocked and recorded. The script checks what a
// person would see (page title, docs explorer, result panel) and what the server received
// (each POST /graphql body as the browser sent it), prints one JSON report as its last line,
// and exits 1 if any check failed. tests/clients/test_browser.py runs it and reads the report.

import { chromium } from "playwright-core";

const options = JSON.parse(process.argv[2]);
const base = options.url.replace(/\/$/, "");
const rounds = options.rounds ?? 5;

const report = {
  title: null,
  landedOn: null,
  outsideRequests: [],
  consoleErrors: [],
  defaultTab: null,
  docsRootTypes: null,
  docsQueryFields: [],
  typing: [],
  login: null,
  headersEditor: null,
  createPost: null,
  createPostAuthorization: null,
  urlsSeen: [],
  failures: [],
};

const started = Date.now();
function mark(what) {
  if (process.env.TIMING) console.error(`${((Date.now() - started) / 1000).toFixed(1)}s ${what}`);
}

function check(ok, what) {
  if (!ok) report.failures.push(what);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  // Root in a container: no user namespaces for the sandbox. Nothing leaves the machine even
  // if routing were bypassed: every host but 127.0.0.1 resolves to nothing.
  args: ["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
});

try {
  mark("launched");
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === "127.0.0.1") return route.continue();
    report.outsideRequests.push(route.request().url());
    return route.abort("blockedbyclient");
  });
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") report.consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => report.consoleErrors.push(String(error)));
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) report.urlsSeen.push(frame.url());
  });
  const sent = []; // every GraphQL request the page made: {query, variables, authorization}
  page.on("request", (request) => {
    if (request.method() === "POST" && new URL(request.url()).pathname === "/graphql") {
      const body = JSON.parse(request.postData() ?? "{}");
      if (!String(body.query ?? "").includes("__schema")) {
        sent.push({ ...body, authorization: request.headers()["authorization"] ?? null });
      }
    }
  });

  // GET / redirects to GraphiQL, which opens on the example tab.
  await page.goto(`${base}/`, { waitUntil: "networkidle" });
  report.landedOn = page.url();
  report.title = await page.title();
  const queryEditor = page.locator(".graphiql-query-editor .CodeMirror").first();
  await queryEditor.waitFor({ state: "visible", timeout: 30_000 });
  const editorValue = (selector) =>
    page.evaluate((s) => document.querySelector(s).CodeMirror.getValue(), selector);
  const QUERY = ".graphiql-query-editor .CodeMirror";
  const RESPONSE = ".graphiql-response .CodeMirror";
  mark("page loaded");
  report.defaultTab = await editorValue(QUERY);

  async function run() {
    // Ctrl-Enter in the query editor; returns what was sent and the response panel's JSON
    // once it shows exactly what the server answered.
    const before = sent.length;
    const answered = page.waitForResponse(
      (r) =>
        r.request().method() === "POST" &&
        new URL(r.url()).pathname === "/graphql" &&
        !String(r.request().postData()).includes("__schema"),
      { timeout: 30_000 },
    );
    await page.locator(QUERY).click();
    await page.keyboard.press("Control+Enter");
    const answer = await (await answered).json();
    await page.waitForFunction(
      ([s, expected]) => document.querySelector(s)?.CodeMirror?.getValue() === expected,
      [RESPONSE, JSON.stringify(answer, null, 2)],
      { timeout: 10_000 },
    );
    const text = await editorValue(RESPONSE);
    return { request: sent[before] ?? null, requests: sent.length - before, response: JSON.parse(text) };
  }

  async function typeInto(selector, text) {
    await page.locator(selector).click();
    await page.keyboard.press("Control+A");
    await page.keyboard.press("Backspace");
    await page.keyboard.type(text);
  }

  const first = await run();
  check(first.response?.data?.users?.totalCount > 0, "the example tab ran and shows users");

  mark("example ran");
  // The docs explorer lists the root types; Query opens with its fields.
  await page.locator('[aria-label="Show Documentation Explorer"]').click();
  const explorer = page.locator(".graphiql-doc-explorer");
  await explorer.waitFor({ state: "visible", timeout: 10_000 });
  report.docsRootTypes = await explorer.innerText();
  await explorer.getByRole("link", { name: "Query", exact: true }).click();
  await explorer.locator(".graphiql-doc-explorer-title", { hasText: "Query" }).waitFor();
  report.docsQueryFields = await explorer.locator(".graphiql-doc-explorer-field-name").allInnerTexts();
  await page.locator('[aria-label="Hide Documentation Explorer"]').click();

  mark("docs checked");
  // The README's long example, typed key by key, several times.
  for (let round = 0; round < rounds; round++) {
    await typeInto(QUERY, options.typed);
    const inEditor = await editorValue(QUERY);
    const result = await run();
    report.typing.push({
      editorIntact: inEditor === options.typed,
      sentIntact: result.request?.query === options.typed,
      sent: result.request?.query === options.typed ? undefined : result.request?.query,
      users: result.response?.data?.users?.nodes?.map((user) => user.username) ?? null,
      errors: result.response?.errors ?? null,
    });
  }

  mark("typed rounds done");
  // README: log in, paste the token into Headers, create a post.
  await typeInto(QUERY, options.login);
  const login = await run();
  report.login = login.response;
  const token = login.response?.data?.login?.token;
  check(typeof token === "string" && token.length > 20, "login returned a token");

  await page.getByRole("button", { name: "Headers", exact: true }).click();
  const HEADERS = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror";
  await page.locator(HEADERS).waitFor({ state: "visible" });
  await typeInto(HEADERS, `{"Authorization": "Bearer ${token}"}`);
  report.headersEditor = await editorValue(HEADERS);

  await typeInto(QUERY, options.createPost);
  const created = await run();
  report.createPost = created.response;
  report.createPostAuthorization = created.request?.authorization === `Bearer ${token}`;
  report.urlsSeen.push(page.url());
  mark("login, headers, createPost done");
} catch (error) {
  report.failures.push(`script error: ${error?.stack ?? error}`);
} finally {
  await browser.close();
}

const typedOk = report.typing.length === rounds &&
  report.typing.every((t) => t.editorIntact && t.sentIntact && t.users?.length > 0);
check(typedOk, "every typed query arrived intact and showed data");
check(report.outsideRequests.length === 0, "no outside requests");
check(report.consoleErrors.length === 0, "no console errors");
check(report.urlsSeen.every((url) => url === `${base}/graphql`), "nothing written into the URL");
console.log(JSON.stringify(report));
process.exit(report.failures.length === 0 ? 0 : 1);
