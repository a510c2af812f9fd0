/**
 * What a person and an operator meet, against real server processes and real SMTP: the page and
 * the email in the person's language (plurals included), the operator's name, logo, colour and
 * email templates, and errors that say what happened and what to do next.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CookieJar } from "../support/cookie-jar";
import { accessToken, browse, form, pathOf, requestMail, signIn } from "../support/flows";
import { startNode, stopAllNodes, tempDir, type NodeProcess } from "../support/node";
import { codeIn, TestSmtpServer } from "../support/smtp";
import { waitFor } from "../support/wait";

const GERMAN = { "Accept-Language": "de-DE,de;q=0.9,en;q=0.5" };
const LIMITS = { RATE_LIMIT_REQUESTS_PER_IP: "1000", RATE_LIMIT_EMAILS_PER_ADDRESS: "100" };
const wrongOf = (code: string, n = 1) => String((Number(code) + n) % 1_000_000).padStart(6, "0");

/** The page's visible text, roughly: tags dropped, entities of quotes kept as they are. */
const textOf = (html: string) => html.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ");
/** A form POST from a German browser. */
const germanForm = (fields: Record<string, string>) => ({
  ...form(fields),
  headers: { ...form({}).headers, ...GERMAN },
});
const ADMIN_TOKEN = "product-test-admin-token-".padEnd(40, "x");

describe("language, brand and templates on one node with real SMTP", () => {
  const smtp = new TestSmtpServer();
  let node: NodeProcess;

  beforeAll(async () => {
    await smtp.start();
    const templates = tempDir("pwdless-templates");
    // the operator's own text email, and a German HTML one; the rest falls back to the shipped ones
    writeFileSync(
      path.join(templates, "sign-in.txt"),
      "ACME sign-in\n\n    {{code}}\n\n{{link}}\n{{#logoUrl}}logo {{logoUrl}}{{/logoUrl}}\n",
    );
    writeFileSync(
      path.join(templates, "sign-in.de.html"),
      '<p lang="de">{{intro}}</p><a href="{{link}}">{{button}}</a><b>{{code}}</b><p>{{linkIntro}}</p>',
    );
    // and the notice to an old address, in German only
    writeFileSync(path.join(templates, "address-changed.de.txt"), "ACME: {{intro}}\n{{warning}}\n");
    node = await startNode({
      env: {
        SMTP_URL: smtp.url,
        ...LIMITS,
        APP_NAME: "Acme Login",
        APP_ACCENT_COLOR: "#e0115f",
        APP_LOGO_URL: "https://cdn.example.com/acme.svg",
        EMAIL_TEMPLATES_DIR: templates,
        ADMIN_API_TOKEN: ADMIN_TOKEN,
        ADMIN_EMAILS: "chefin@example.com",
      },
    });
  });
  afterAll(async () => {
    await stopAllNodes();
    await smtp.stop();
  });

  it("answers Accept-Language: de with German pages, and English without it", async () => {
    const german = await node.fetch("/login", { headers: GERMAN });
    const html = await german.text();
    expect(html).toContain('<html lang="de"');
    expect(html).toContain("<title>Anmelden · Acme Login</title>");
    expect(textOf(html)).toContain("Anmeldelink per E-Mail senden");
    const english = await (await node.fetch("/login", { headers: { "Accept-Language": "fr, en;q=0.5" } })).text();
    expect(english).toContain('<html lang="en"');
    expect(textOf(english)).toContain("Email me a sign-in link");
    // the 404 page has a title in the person's language too
    const missing = await node.fetch("/no/such/page", { headers: GERMAN });
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain("<title>Seite nicht gefunden · Acme Login</title>");
  });

  it("keeps the switcher's choice in a cookie that wins over Accept-Language, and goes back where it was", async () => {
    const jar = new CookieJar();
    const switched = await browse(node, jar, "/locale", form({ locale: "de", back: "/login?email=a%40b.c" }));
    expect(switched.status).toBe(302);
    expect(switched.headers.get("location")).toBe("/login?email=a%40b.c");
    expect(switched.headers.get("set-cookie")).toMatch(/pwdless_locale=de; Path=\/; Max-Age=31536000; SameSite=Lax/);
    const page = await browse(node, jar, "/login", { headers: { "Accept-Language": "en" } });
    expect(await page.text()).toContain('<html lang="de"');
    // an unknown language changes nothing, and an outside redirect is not followed
    const odd = await browse(node, jar, "/locale", form({ locale: "xx", back: "https://evil.example/" }));
    expect(odd.headers.get("location")).toBe("/");
    expect(odd.headers.get("set-cookie")).toBeNull();
  });

  it("sends the email in the language of the request, with the code in the subject and the operator's templates", async () => {
    const jar = new CookieJar();
    const before = smtp.to("greta@example.com").length;
    const res = await browse(node, jar, "/login", {
      ...form({ email: "greta@example.com" }),
      headers: { ...form({}).headers, ...GERMAN },
    });
    expect(res.status).toBe(302);
    const mail = await waitFor("the German mail", () => smtp.to("greta@example.com")[before]);
    const code = codeIn(mail);
    expect(mail.subject).toBe(`${code} ist Ihr Anmeldecode für Acme Login`);
    // the folder's text template (no German one there), with the logo section kept
    expect(mail.text).toMatch(
      /^ACME sign-in\n\n {4}[0-9]{6}\n\nhttp:\/\/127\.0\.0\.1:\d+\/auth\/email\/callback\?token=\S+\nlogo https:\/\/cdn\.example\.com\/acme\.svg\n/,
    );
    // the folder's German HTML template, German words and plural: 15 minutes
    expect(mail.html).toContain(
      '<p lang="de">Jemand (hoffentlich Sie) möchte sich bei Acme Login als greta@example.com anmelden.</p>',
    );
    expect(mail.html).toContain("15 Minuten lang");
    expect(mail.html).toContain(`<b>${code}</b>`);

    const english = await requestMail(node, new CookieJar(), "ed@example.com", smtp);
    const englishMail = smtp.to("ed@example.com").at(-1)!;
    expect(englishMail.subject).toBe(`${english.code} is your sign-in code for Acme Login`);
    // no English HTML template in the folder: the shipped one, with the brand's colour and logo
    expect(englishMail.html).toContain("background:#e0115f");
    expect(englishMail.html).toContain('<img src="https://cdn.example.com/acme.svg" alt="Acme Login"');
    expect(englishMail.html).toContain("for 15 minutes");
  });

  it("shows the brand under a CSP that allows the logo's origin and nothing else new", async () => {
    const res = await node.fetch("/login");
    const html = await res.text();
    expect(html).toContain('<img src="https://cdn.example.com/acme.svg" alt="" class="logo"/>');
    expect(html).toContain("<span>Acme Login</span>");
    const sheet = /<link rel="stylesheet" href="(\/brand\.css\?v=[a-z0-9]+)"\/>/.exec(html)?.[1];
    expect(sheet).toBeDefined();
    const css = await node.fetch(sheet!);
    expect(css.headers.get("content-type")).toContain("text/css");
    expect(await css.text()).toContain("--brand:#e0115f");
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toContain("img-src 'self' data: https://cdn.example.com;");
    expect(csp).toContain("style-src 'self';");
  });

  it("counts the tries left in the person's language, and says a code and its link were blocked, not used", async () => {
    const jar = new CookieJar();
    const before = smtp.to("tries@example.com").length;
    await browse(node, jar, "/login", germanForm({ email: "tries@example.com" }));
    const mail = await waitFor("the mail", () => smtp.to("tries@example.com")[before]);
    const code = codeIn(mail);
    const link = /http:\/\/\S+/.exec(mail.text)![0];
    const first = await browse(node, jar, "/login/sent", germanForm({ code: wrongOf(code, 1) }));
    expect(first.status).toBe(400);
    expect(textOf(await first.text())).toContain("Dieser Code stimmt nicht. Sie haben noch 4 Versuche");
    for (const n of [2, 3]) await browse(node, jar, "/login/sent", germanForm({ code: wrongOf(code, n) }));
    const fourth = await browse(node, jar, "/login/sent", germanForm({ code: wrongOf(code, 4) }));
    expect(textOf(await fourth.text())).toContain("Sie haben noch 1 Versuch,");
    const fifth = await browse(node, jar, "/login/sent", form({ code: wrongOf(code, 5) }));
    expect(textOf(await fifth.text())).toContain("it was typed wrong too many times");
    // now even the right code is told it was blocked, and the page offers a new email, not the field
    const right = await browse(node, jar, "/login/sent", form({ code }));
    const rightPage = await right.text();
    expect(textOf(rightPage)).toContain("it and its link were blocked for your safety");
    expect(rightPage).not.toContain('name="code"');
    expect(textOf(rightPage)).toContain("Send another email");
    // the untouched link says what happened to it
    const opened = await browse(node, new CookieJar(), pathOf(link));
    expect(opened.status).toBe(410);
    expect(textOf(await opened.text())).toContain("This link was blocked after too many wrong codes");
  });

  it("changes an address in German: the pages, the link and code to the new address, the notice to the old one", async () => {
    const jar = await signIn(node, "umzug@example.com", smtp);
    const account = await (await browse(node, jar, "/account", { headers: GERMAN })).text();
    expect(textOf(account)).toContain("Ihre Adresse und Ihre Daten");
    expect(account).toMatch(/<label for="new-email">Neue Adresse<\/label>/);

    const asked = await browse(node, jar, "/account/email", germanForm({ email: "neu@example.com" }));
    expect(asked.headers.get("location")).toBe("/account/email?sent=1");
    const sent = await (await browse(node, jar, "/account/email?sent=1", { headers: GERMAN })).text();
    expect(sent).toContain("<title>Adresse ändern · Acme Login</title>");
    expect(textOf(sent)).toContain("Wir haben einen Link und einen Code an neu@example.com gesendet.");
    expect(sent).toContain('<label for="code">Code, gesendet an neu@example.com</label>');

    // the link and code, in German, with the operator's name, logo and colour (the shipped template)
    const mail = await waitFor("the German confirmation", () => smtp.to("neu@example.com")[0]);
    expect(mail.subject).toBe("Bestätigen Sie Ihre neue Adresse für Acme Login");
    expect(mail.text).toContain("Jemand, der bei Acme Login als umzug@example.com angemeldet ist");
    expect(mail.text).toContain("15 Minuten lang");
    expect(mail.text).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/account\/email\/confirm\?token=\S+$/m);
    expect(mail.html).toContain('<img src="https://cdn.example.com/acme.svg" alt="Acme Login"');
    expect(mail.html).toContain("background:#e0115f");
    expect(mail.html).toContain(">Diese Adresse verwenden</a>");
    const code = codeIn(mail);

    // a wrong code is refused in German, with the tries left; the right one changes the address
    const wrong = await browse(node, jar, "/account/email", germanForm({ intent: "code", code: wrongOf(code) }));
    expect(wrong.status).toBe(400);
    expect(textOf(await wrong.text())).toContain("Dieser Code stimmt nicht. Sie haben noch 4 Versuche mit diesem Code");
    const done = await browse(node, jar, "/account/email", germanForm({ intent: "code", code }));
    expect(done.headers.get("location")).toBe("/account?addressChanged=1");
    const changed = await (await browse(node, jar, "/account?addressChanged=1", { headers: GERMAN })).text();
    expect(textOf(changed)).toContain("Ihre Adresse wurde geändert.");

    // the old address's notice, in German, from the operator's German text template
    const notice = await waitFor("the notice to the old address", () =>
      smtp.to("umzug@example.com").find((m) => m.subject === "Ihre Adresse für Acme Login wurde geändert"),
    );
    expect(notice.text).toMatch(
      /^ACME: Das Konto bei Acme Login, das diese Adresse \(umzug@example\.com\) verwendet hat, verwendet jetzt neu@example\.com\./,
    );
    expect(notice.html).toContain("Wenden Sie sich an die Administratoren der Website.");
  });

  it("says in German that /admin is for administrators, and shows it to one in German", async () => {
    const person = await signIn(node, "kein-admin@example.com", smtp);
    const refused = await browse(node, person, "/admin", { headers: GERMAN });
    expect(refused.status).toBe(403);
    expect(textOf(await refused.text())).toContain("Diese Seite ist für die Administratoren der Website");
    const chefin = await signIn(node, "chefin@example.com", smtp);
    const admin = await (await browse(node, chefin, "/admin?query=kein-admin", { headers: GERMAN })).text();
    expect(admin).toContain("<title>Benutzer · Verwaltung · Acme Login</title>");
    expect(textOf(admin)).toContain("1 Benutzer");
    expect(admin).toContain(">kein-admin@example.com</a>");
  });

  it("writes an invitation in the language the API request names (Accept-Language), else in English", async () => {
    const invite = (email: string, headers: Record<string, string>) =>
      node.fetch("/api/admin/invites", {
        method: "POST",
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json", ...headers },
        body: JSON.stringify({ email }),
      });
    expect((await invite("gast@example.com", GERMAN)).status).toBe(201);
    expect((await invite("guest@example.com", {})).status).toBe(201);
    const german = await waitFor("the German invitation", () => smtp.to("gast@example.com")[0]);
    expect(german.subject).toBe("Sie sind zu Acme Login eingeladen");
    expect(german.text).toContain(
      "Sie sind eingeladen, mit dieser Adresse (gast@example.com) ein Konto bei Acme Login",
    );
    expect(german.text).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/login\?email=gast%40example\.com$/m);
    expect(german.html).toContain(">Bei Acme Login anmelden</a>");
    const english = await waitFor("the English invitation", () => smtp.to("guest@example.com")[0]);
    expect(english.subject).toBe("You are invited to Acme Login");
  });

  it("tells a browser with no sign-in waiting (its request expired) so, with a form for a new email", async () => {
    const res = await browse(node, new CookieJar(), "/login/sent", form({ code: "123456" }));
    expect(res.status).toBe(400);
    const html = await res.text();
    expect(textOf(html)).toContain("There is no sign-in waiting in this browser");
    expect(html).toMatch(/<form method="post" action="\/login"[^>]*>.*<input id="email" name="email" type="email"/s);
  });

  it("answers POST /logout as JSON to an API client, and a 401 says the same in its body and header", async () => {
    const jar = new CookieJar();
    const asked = new CookieJar();
    const mail = await requestMail(node, asked, "api-client@example.com", smtp);
    expect((await browse(node, asked, pathOf(mail.link), { method: "POST" })).status).toBe(302);
    await accessToken(node, asked);
    const out = await browse(node, asked, "/logout", {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify({ scope: "everywhere" }),
    });
    expect(out.status).toBe(200);
    expect(await out.json()).toEqual({ status: "signed_out", scope: "everywhere", session: "ended" });
    expect(out.headers.get("set-cookie")).toContain("pwdless_session=;");
    const refreshed = await browse(node, jar, "/auth/refresh", { method: "POST" });
    expect(refreshed.status).toBe(401);
    expect(await refreshed.json()).toMatchObject({ error: "unauthorized" });
    // no credentials: a bare challenge (RFC 6750 §3.1), not an error code the body does not name
    expect(refreshed.headers.get("www-authenticate")).toBe('Bearer realm="api"');
  });
});

describe("openings of junk tokens", () => {
  afterAll(stopAllNodes);

  it("do not spend the openings of people behind the same address who hold real links", async () => {
    const node = await startNode({ env: { RATE_LIMIT_OPENINGS_PER_IP: "3", ...LIMITS } });
    const jar = new CookieJar();
    const { link } = await requestMail(node, jar, "office@example.com");
    for (let i = 0; i < 3; i++) expect((await node.fetch(`/auth/email/callback?token=junk${i}`)).status).toBe(400);
    const refused = await node.fetch("/auth/email/callback?token=junk-more");
    expect(refused.status).toBe(429);
    const page = textOf(await refused.text());
    expect(page).toContain("Too many links opened from your network");
    // a new link would be refused the same way: the page says to wait, and offers no new link
    expect(page).not.toContain("Request a new link");
    // the colleague's real link still opens, and signs in
    expect((await browse(node, jar, pathOf(link))).status).toBe(200);
    expect((await browse(node, jar, pathOf(link), { method: "POST" })).status).toBe(302);
  });
});

describe("settings checked at start", () => {
  afterAll(stopAllNodes);

  it("refuses bad brand settings and email templates with one line per problem", async () => {
    const templates = tempDir("pwdless-bad-templates");
    writeFileSync(path.join(templates, "sign-in.html"), "<a href='{{link}}'>{{buton}}</a>{{#logoUrl}}");
    writeFileSync(path.join(templates, "sign-in.fr.txt"), "{{code}} {{link}}");
    writeFileSync(path.join(templates, "welcome.txt"), "hello");
    writeFileSync(path.join(templates, "invitation.de.html"), "<p>{{intro}}</p>");
    writeFileSync(path.join(templates, "delete-code.txt"), "{{code}} {{link}}");
    mkdirSync(path.join(templates, "notes"));
    const node = await startNode({
      waitUntil: "none",
      env: {
        APP_ACCENT_COLOR: "blue",
        APP_LOGO_URL: "ftp://example.com/logo.png",
        APP_NAME: "Acme\r\nBcc: someone@example.com",
        EMAIL_TEMPLATES_DIR: templates,
      },
    });
    expect(await node.waitForExit()).toBe(1);
    const log = node.log;
    expect(log).toContain("APP_ACCENT_COLOR must be a colour such as #2d5bd7");
    expect(log).toContain("APP_LOGO_URL must be an https:// URL");
    expect(log).toContain("APP_NAME must be at most 60 characters with no line breaks");
    expect(log).toContain("sign-in.html: unknown value {{buton}}");
    expect(log).toContain("sign-in.html: section {{#logoUrl}} is never closed");
    expect(log).toContain("sign-in.html: must show {{code}}");
    expect(log).toContain('sign-in.fr.txt: "fr" is not a language of this app (en, de)');
    expect(log).toContain("welcome.txt: not a template this app sends");
    expect(log).toContain("invitation.de.html: must show {{link}}");
    expect(log).toContain("delete-code.txt: unknown value {{link}}");
  });
});
