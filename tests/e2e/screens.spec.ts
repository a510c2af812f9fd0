/**
 * Every page and state a person or an operator meets, on a phone (390 px, and 360 px in German
 * and dark mode) and a desktop (1280 px): nothing wider than the screen, and axe-core finds no
 * serious or critical violation. One node, one walk per screen; sign-ins are reused across states
 * (the walk's person is also one of ADMIN_EMAILS, for the /admin pages).
 */
import { expect, test, type BrowserContext, type Page } from "@playwright/test";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { freePort } from "../support/ports";
import { check, newContext, type Screen } from "../support/screens";
import { waitFor } from "../support/wait";

let node: NodeProcess;
const OPENINGS = 40;
/** the walk's addresses: long, so that buttons and headings holding them must wrap */
const addressOf = (label: string, screen: Screen) =>
  `${label}-${screen.width}-${screen.locale}@an-unusually-long-domain-name.example.com`;

test.beforeAll(async () => {
  // WebAuthn refuses IP addresses as relying party ids: reached as localhost. Links live one
  // minute, so the walk can show an expired request at its end without a clock of its own.
  const port = await freePort();
  node = await startNode({
    port,
    env: {
      APP_URL: `http://localhost:${port}`,
      LINK_TTL_MINUTES: "1",
      RATE_LIMIT_OPENINGS_PER_IP: String(OPENINGS),
      RATE_LIMIT_REQUESTS_PER_IP: "1000",
      RATE_LIMIT_EMAILS_PER_ADDRESS: "100",
      ADMIN_EMAILS: SCREENS.map((screen) => addressOf("person", screen)).join(","),
    },
  });
});
test.afterAll(async () => {
  await Promise.all([...lateRequests.values()].map((r) => r.context.close()));
  await stopAllNodes();
});

/**
 * One request per screen, made before the walks: it has expired (links live one minute) by the
 * end of its walk, so its expired page is shown without a clock of the test's own.
 */
const lateRequests = new Map<string, { context: BrowserContext; page: Page; mail: Mail; at: number }>();
test.beforeAll(async ({ browser }) => {
  for (const screen of SCREENS) {
    const context = await newContext(browser, screen);
    const page = await context.newPage();
    const mail = await askForEmail(page, WORDS[screen.locale], `late-${screen.width}-${screen.locale}@example.com`);
    lateRequests.set(screen.name, { context, page, mail, at: Date.now() });
  }
});

const SCREENS: Screen[] = [
  { name: "phone", width: 390, locale: "en", colorScheme: "light" },
  { name: "desktop", width: 1280, locale: "en", colorScheme: "light" },
  { name: "small phone, German, dark", width: 360, locale: "de", colorScheme: "dark" },
];

/** What each step expects to read, per language. */
type Words = Record<
  | "email"
  | "send"
  | "codeLabel"
  | "checkEmail"
  | "notRight"
  | "showCode"
  | "signOutEverywhere"
  | "remove"
  | "name"
  | "add"
  | "noneWaiting"
  | "used"
  | "burnt"
  | "expired"
  | "tooMany"
  | "notFound"
  | "newAddress"
  | "changeAddress"
  | "codeSentTo"
  | "confirmAddress"
  | "useAddress"
  | "deleteAccount"
  | "sendDeleteCode"
  | "deleteButton"
  | "search"
  | "searchButton"
  | "disable"
  | "endSessions"
  | "erase",
  string
>;
const WORDS: Record<Screen["locale"], Words> = {
  en: {
    email: "Email address",
    send: "Email me a sign-in link",
    codeLabel: "Code from the email",
    checkEmail: "Check your email",
    notRight: "That code is not right",
    showCode: "Show the code for the other browser",
    signOutEverywhere: "Sign out everywhere",
    remove: "Remove",
    name: "Name for a new passkey",
    add: "Add a passkey",
    noneWaiting: "No sign-in is waiting in this browser",
    used: "This link was already used",
    burnt: "This link was blocked after too many wrong codes",
    expired: "This link has expired",
    tooMany: "Too many links opened from your network",
    notFound: "Page not found",
    newAddress: "New address",
    changeAddress: "Change address",
    codeSentTo: "Code sent to",
    confirmAddress: "Confirm the new address",
    useAddress: "Use this address",
    deleteAccount: "Delete my account…",
    sendDeleteCode: "Email me a code to confirm",
    deleteButton: "Delete my account",
    search: "Address starts with, or user id",
    searchButton: "Search",
    disable: "Disable…",
    endSessions: "End sessions…",
    erase: "Erase…",
  },
  de: {
    email: "E-Mail-Adresse",
    send: "Anmeldelink per E-Mail senden",
    codeLabel: "Code aus der E-Mail",
    checkEmail: "Schauen Sie in Ihre E-Mails",
    notRight: "Dieser Code stimmt nicht",
    showCode: "Code für den anderen Browser anzeigen",
    signOutEverywhere: "Überall abmelden",
    remove: "Entfernen",
    name: "Name für einen neuen Passkey",
    add: "Passkey hinzufügen",
    noneWaiting: "In diesem Browser wartet keine Anmeldung",
    used: "Dieser Link wurde bereits verwendet",
    burnt: "Dieser Link wurde nach zu vielen falschen Codes gesperrt",
    expired: "Dieser Link ist abgelaufen",
    tooMany: "Aus Ihrem Netzwerk wurden zu viele Links geöffnet",
    notFound: "Seite nicht gefunden",
    newAddress: "Neue Adresse",
    changeAddress: "Adresse ändern",
    codeSentTo: "Code, gesendet an",
    confirmAddress: "Neue Adresse bestätigen",
    useAddress: "Diese Adresse verwenden",
    deleteAccount: "Mein Konto löschen …",
    sendDeleteCode: "Code zur Bestätigung per E-Mail senden",
    deleteButton: "Mein Konto löschen",
    search: "Adresse beginnt mit, oder Benutzer-ID",
    searchButton: "Suchen",
    disable: "Sperren …",
    endSessions: "Sitzungen beenden …",
    erase: "Löschen …",
  },
};

type Mail = { to: string; subject: string; text: string };

async function mailsTo(email: string): Promise<Mail[]> {
  const res = await node.fetch(`/dev/mailbox.json?to=${encodeURIComponent(email)}`);
  return ((await res.json()) as { messages: Mail[] }).messages;
}

async function newestMail(email: string, after: number): Promise<Mail> {
  return waitFor(`mail number ${after + 1} to ${email}`, async () => {
    const messages = await mailsTo(email);
    return messages.length > after ? messages[0] : undefined;
  });
}

/** The newest mail to `email` with a code in it that was not in any of `seen` (notices have none). */
async function newCodeMail(email: string, seen: Mail[]): Promise<Mail> {
  const old = new Set(seen.map((m) => m.text));
  return waitFor(`a new mail with a code to ${email}`, async () =>
    (await mailsTo(email)).find((m) => !old.has(m.text) && /^\s+[0-9]{6}$/m.test(m.text)),
  );
}
const linkOf = (mail: Mail) => /http:\/\/\S+/.exec(mail.text)![0];
const codeOf = (mail: Mail) => /^\s+([0-9]{6})$/m.exec(mail.text)![1]!;
const wrongOf = (code: string, n = 1) => String((Number(code) + n) % 1_000_000).padStart(6, "0");

async function askForEmail(page: Page, words: Words, email: string): Promise<Mail> {
  const before = (
    (await (await node.fetch(`/dev/mailbox.json?to=${encodeURIComponent(email)}`)).json()) as { messages: Mail[] }
  ).messages.length;
  await page.goto(`${node.url}/login`);
  await page.getByLabel(words.email).fill(email);
  await page.getByRole("button", { name: words.send }).click();
  await expect(page.getByRole("heading", { name: words.checkEmail })).toBeVisible();
  return newestMail(email, before);
}

for (const screen of SCREENS) {
  test(`every page and state fits a ${screen.width} px screen and passes axe (${screen.name})`, async ({ browser }) => {
    test.setTimeout(240_000);
    const words = WORDS[screen.locale];
    const problems: string[] = [];
    const who = (label: string) => addressOf(label, screen);
    const context = await newContext(browser, screen);
    const page = await context.newPage();

    const { page: latePage, mail: lateMail, at: lateAsked } = lateRequests.get(screen.name)!;

    await page.goto(`${node.url}/`);
    await check(page, "home", problems);
    await page.goto(`${node.url}/login`);
    await expect(page.getByLabel(words.email)).toBeFocused();
    await check(page, "login", problems);
    await page.getByLabel(words.email).fill("not an address");
    await page.getByRole("button", { name: words.send }).click();
    await expect(page.getByRole("alert")).toBeVisible();
    await check(page, "login with an error", problems);

    // check your email, a wrong code, then the link opened on another device
    const mail = await askForEmail(page, words, who("person"));
    await check(page, "check your email", problems);
    await page.getByLabel(words.codeLabel).fill(wrongOf(codeOf(mail)));
    await expect(page.getByRole("alert")).toContainText(words.notRight);
    await check(page, "wrong code", problems);
    const phone = await newContext(browser, screen);
    const phonePage = await phone.newPage();
    await phonePage.goto(linkOf(mail));
    await check(phonePage, "link on another device", problems);
    await phonePage.getByRole("button", { name: words.showCode }).click();
    await expect(phonePage.getByTestId("shown-code")).toBeVisible();
    await check(phonePage, "code shown for the other device", problems);

    // the confirmation, the account, a used link
    await page.goto(linkOf(mail));
    await check(page, "sign in as …?", problems);
    await page.locator("main").getByRole("button").first().click();
    await expect(page).toHaveURL(/\/account$/);
    await expect(page.getByTestId("account-email")).toBeVisible();
    await check(page, "account", problems);
    await page.goto(linkOf(mail));
    await expect(page.getByRole("heading", { name: words.used })).toBeVisible();
    await check(page, "used link", problems);

    // a second session and a passkey, then both confirmations
    const other = await phone.newPage();
    const otherMail = await askForEmail(other, words, who("person"));
    await other.getByLabel(words.codeLabel).fill(codeOf(otherMail));
    await expect(other).toHaveURL(/\/account$/);
    const cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: {
        protocol: "ctap2",
        transport: "internal",
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    await page.goto(`${node.url}/account`);
    await page.getByLabel(words.name).fill("Phone of someone with a long name");
    await page.getByRole("button", { name: words.add }).click();
    await expect(page.getByTestId("passkey-row")).toHaveCount(1);
    await expect(page.getByTestId("session-row")).toHaveCount(2);
    await check(page, "account with sessions and passkeys", problems);
    await page.getByRole("link", { name: new RegExp(`^${words.remove}`) }).click();
    await expect(page.getByRole("button", { name: /remove|entfernen/i })).toBeFocused();
    await check(page, "confirm removing a passkey", problems);
    await page.getByRole("link", { name: words.signOutEverywhere }).click();
    await check(page, "confirm signing out everywhere", problems);

    // a change of address: asked for on /account, its code step, a wrong code, its link's page,
    // and /account with the change waiting (not finished: the walk's person stays an administrator)
    const newAddress = who("new");
    await page.goto(`${node.url}/account`);
    await page.getByLabel(words.newAddress).fill(newAddress);
    await page.getByRole("button", { name: words.changeAddress }).click();
    await expect(page).toHaveURL(/\/account\/email\?sent=1$/);
    await expect(page.getByRole("status")).toContainText(newAddress);
    await check(page, "change of address: code step", problems);
    const changeMail = await newCodeMail(newAddress, []);
    await page.getByLabel(`${words.codeSentTo} ${newAddress}`).fill(wrongOf(codeOf(changeMail)));
    await page.getByRole("button", { name: words.confirmAddress }).click();
    await expect(page.getByTestId("lifecycle-problem")).toContainText(words.notRight);
    await check(page, "change of address: wrong code", problems);
    await page.goto(linkOf(changeMail));
    await expect(page.getByRole("button", { name: words.useAddress })).toBeVisible();
    await check(page, "change of address: the link's page", problems);
    await page.goto(`${node.url}/account`);
    await expect(page.getByLabel(`${words.codeSentTo} ${newAddress}`)).toBeVisible();
    await check(page, "account with a change of address waiting", problems);

    // deleting the account: the page, the code sent, a wrong code (nothing is deleted)
    const personMails = await mailsTo(who("person"));
    await page.getByRole("link", { name: words.deleteAccount }).click();
    await expect(page.getByRole("button", { name: words.sendDeleteCode })).toBeVisible();
    await check(page, "delete account", problems);
    await page.getByRole("button", { name: words.sendDeleteCode }).click();
    const deleteMail = await newCodeMail(who("person"), personMails);
    await expect(page.getByRole("status")).toBeVisible();
    await check(page, "delete account: code sent", problems);
    await page.getByLabel(`${words.codeSentTo} ${who("person")}`).fill(wrongOf(codeOf(deleteMail)));
    await page.getByRole("button", { name: words.deleteButton, exact: true }).click();
    await expect(page.getByTestId("lifecycle-problem")).toContainText(words.notRight);
    await check(page, "delete account: wrong code", problems);

    // the operator's pages: a search with results, a user's page, each destructive act's question
    await page.goto(`${node.url}/admin`);
    await page.getByLabel(words.search).fill("person-");
    await page.getByRole("button", { name: words.searchButton }).click();
    await expect(page.getByRole("link", { name: who("person") })).toBeVisible();
    await check(page, "admin search", problems);
    await page.getByRole("link", { name: who("person") }).click();
    await expect(page.getByTestId("admin-session-row")).toHaveCount(2);
    await check(page, "admin user", problems);
    for (const act of [words.disable, words.endSessions, words.erase]) {
      await page.getByRole("button", { name: act }).click();
      const dialog = page.getByRole("alertdialog");
      await expect(dialog.getByRole("button")).toBeFocused();
      await check(page, `admin user: confirm ${act}`, problems);
      await dialog.getByRole("link").click();
      await expect(dialog).toHaveCount(0);
    }
    await page.goto(`${node.url}/admin/users/00000000-0000-4000-8000-000000000000`);
    await check(page, "admin: no such user", problems);

    // a link burnt by wrong codes
    const burning = await newContext(browser, screen);
    const burnPage = await burning.newPage();
    const burnMail = await askForEmail(burnPage, words, who("burn"));
    for (let i = 1; i <= 5; i++) {
      await burnPage.getByLabel(words.codeLabel).fill(wrongOf(codeOf(burnMail), i));
      await expect(burnPage.getByRole("alert")).toBeVisible();
      if (i < 5) await expect(burnPage.getByLabel(words.codeLabel)).toHaveValue("");
    }
    await check(burnPage, "code burnt by wrong tries", problems);
    await burnPage.goto(linkOf(burnMail));
    await expect(burnPage.getByRole("heading", { name: words.burnt })).toBeVisible();
    await check(burnPage, "link burnt by wrong codes", problems);

    // operator and developer pages, the 404, a provider's refusal
    await page.goto(`${node.url}/dev/mailbox`);
    await check(page, "development mailbox", problems);
    await page.goto(`${node.url}/cluster`);
    await check(page, "cluster", problems);
    await page.goto(`${node.url}/auth/dev`);
    await check(page, "provider start", problems);
    await page.goto(`${node.url}/auth/dev/callback?code=x&state=y`);
    await check(page, "provider refusal", problems);
    await page.goto(`${node.url}/no/such/page`);
    await expect(page.getByRole("heading", { name: words.notFound })).toBeVisible();
    await check(page, "404", problems);

    // too many openings from one address: junk tokens spend their own budget, then the page says to wait
    for (let i = 0; i <= OPENINGS; i++) await node.fetch(`/auth/email/callback?token=junk-${screen.width}-${i}`);
    await page.goto(`${node.url}/auth/email/callback?token=junk-${screen.width}-more`);
    await expect(page.getByRole("heading", { name: words.tooMany })).toBeVisible();
    await check(page, "429", problems);

    // the request made at the start has expired: its page and its link say so, and lead on
    await waitFor("the first request to expire", () => Date.now() - lateAsked > 62_000, 90_000, 500);
    await latePage.reload();
    await expect(latePage.getByRole("heading", { name: words.noneWaiting })).toBeVisible();
    await check(latePage, "expired request, no code field", problems);
    await latePage.goto(linkOf(lateMail));
    await expect(latePage.getByRole("heading", { name: words.expired })).toBeVisible();
    await check(latePage, "expired link", problems);

    await Promise.all([context.close(), phone.close(), burning.close()]);
    expect(problems).toEqual([]);
  });
}
