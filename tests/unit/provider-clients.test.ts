import { describe, expect, it } from "vitest";
import { parseProviderClients } from "../../server/provider-clients";

const SECRET = "s".repeat(32);

function check(clients: unknown, production = true): { problems: string[]; count: number } {
  const problems: string[] = [];
  const parsed = parseProviderClients(JSON.stringify(clients), production, problems);
  return { problems, count: parsed.length };
}

describe("OIDC_PROVIDER_CLIENTS_FILE", () => {
  it("accepts confidential, public, device-only and first-party clients, with defaults filled in", () => {
    const problems: string[] = [];
    const [web, spa, cli] = parseProviderClients(
      JSON.stringify([
        { client_id: "web", client_secret: SECRET, redirect_uris: ["https://app.example.com/cb"], first_party: true },
        { client_id: "spa", token_endpoint_auth_method: "none", redirect_uris: ["https://spa.example.com/"] },
        {
          client_id: "cli",
          token_endpoint_auth_method: "none",
          grant_types: ["urn:ietf:params:oauth:grant-type:device_code"],
        },
      ]),
      true,
      problems,
    );
    expect(problems).toEqual([]);
    expect(web).toMatchObject({
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["authorization_code"],
      response_types: ["code"],
      first_party: true,
    });
    expect(spa).toMatchObject({ first_party: false, response_types: ["code"] });
    expect(cli).toMatchObject({ response_types: [], redirect_uris: [] });
  });

  it("allows http redirect URIs to this machine in production, and to anywhere in local mode", () => {
    const client = {
      client_id: "dev",
      client_secret: SECRET,
      redirect_uris: ["http://localhost:5173/cb", "http://127.0.0.1:8080/cb"],
    };
    expect(check([client]).problems).toEqual([]);
    expect(check([{ ...client, redirect_uris: ["http://app.internal/cb"] }], false).problems).toEqual([]);
    expect(check([{ ...client, redirect_uris: ["http://app.internal/cb"] }], true).problems).toHaveLength(1);
  });

  it("says what is wrong, one line per problem, naming the client and the field", () => {
    const { problems, count } = check([
      { client_id: "a", redirect_uris: ["https://a.example/cb"] },
      {
        client_id: "b",
        token_endpoint_auth_method: "none",
        client_secret: SECRET,
        redirect_uris: ["https://b.example/cb"],
      },
      { client_id: "c", client_secret: SECRET },
      {
        client_id: "d",
        client_secret: SECRET,
        redirect_uris: ["https://d.example/cb#frag", "not a url", "custom:/cb"],
      },
      { client_id: "e", client_secret: SECRET, redirect_uris: ["https://e.example/cb"], grant_types: ["implicit"] },
      { client_id: "f", client_secret: SECRET, redirect_uris: ["https://f.example/cb"], first_party: "yes" },
      { client_id: "a", client_secret: SECRET, redirect_uris: ["https://a.example/cb"] },
      {
        client_id: "g",
        application_type: "native",
        token_endpoint_auth_method: "none",
        redirect_uris: ["http://127.0.0.1/cb"],
      },
      {
        client_id: "h",
        client_secret: SECRET,
        grant_types: ["refresh_token"],
        redirect_uris: ["https://h.example/cb"],
      },
      { client_id: "i", client_secret: SECRET, redirect_uris: ["https://i.example/cb"], scope: "openid admin" },
      "just a string",
    ]);
    expect(count).toBe(0);
    const expected = [
      /client "a": client_secret of at least 32 characters is required for client_secret_basic/,
      /client "b": a public client .* must not have a client_secret/,
      /client "c": redirect_uris must list at least one URI/,
      /client "d": redirect_uris\[0\] .* must not have a fragment/,
      /client "d": redirect_uris\[1\] "not a url" is not an absolute URI/,
      /client "d": redirect_uris\[2\] "custom:\/cb" must be an https URL/,
      /client "e": grant_types\.0: Invalid enum value/,
      /client "f": first_party: Expected boolean/,
      /client_id "a" is listed twice/,
      /client "g": redirect_uris\[0\] .* would match any port/,
      /client "h": grant_types: refresh_token needs authorization_code/,
      /client "i": scope: a space-separated list of openid, email, profile, offline_access/,
      /client #11 must be a JSON object/,
    ];
    for (const pattern of expected)
      expect(
        problems.some((p) => pattern.test(p)),
        String(pattern),
      ).toBe(true);
    expect(problems.every((p) => p.startsWith("OIDC_PROVIDER_CLIENTS_FILE"))).toBe(true);
    expect(problems.join("\n")).not.toContain(SECRET);
  });

  it("refuses a file that is not a JSON array of clients", () => {
    for (const text of ["", "{}", "[]", "not json"]) {
      const problems: string[] = [];
      parseProviderClients(text, true, problems);
      expect(problems, text).toHaveLength(1);
    }
  });
});

describe("what the clients file accepts, oidc-provider accepts", () => {
  it("instantiates every accepted client with oidc-provider's own rules", async () => {
    const problems: string[] = [];
    const clients = parseProviderClients(
      JSON.stringify([
        {
          client_id: "web",
          client_secret: SECRET,
          redirect_uris: ["https://app.example.com/cb"],
          post_logout_redirect_uris: ["https://app.example.com/"],
          grant_types: ["authorization_code", "refresh_token"],
          first_party: true,
          backchannel_logout_uri: "https://app.example.com/bc",
          backchannel_logout_session_required: true,
        },
        {
          client_id: "local",
          client_secret: SECRET,
          token_endpoint_auth_method: "client_secret_post",
          redirect_uris: ["http://127.0.0.1:8080/cb"],
          id_token_signed_response_alg: "EdDSA",
        },
        {
          client_id: "spa",
          token_endpoint_auth_method: "none",
          redirect_uris: ["https://spa.example.com/"],
          scope: "openid email",
        },
        {
          client_id: "cli",
          token_endpoint_auth_method: "none",
          grant_types: ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
        },
        {
          client_id: "mobile",
          application_type: "native",
          token_endpoint_auth_method: "none",
          redirect_uris: ["com.example.app:/oauth2redirect"],
        },
      ]),
      true,
      problems,
    );
    expect(problems).toEqual([]);
    const { default: Provider } = await import("oidc-provider");
    const { deriveProviderKeys } = await import("../../app/lib/provider/keys.server");
    const provider = new Provider("https://login.example.com", {
      jwks: { keys: (await deriveProviderKeys(new Uint8Array(32), [])) as never },
      clients: clients.map((c) => ({ ...c, response_types: c.response_types.filter((t) => t === "code") })),
      extraClientMetadata: { properties: ["first_party"] },
      features: {
        devInteractions: { enabled: false },
        deviceFlow: { enabled: true },
        backchannelLogout: { enabled: true },
      },
      responseTypes: ["code"],
      scopes: ["openid", "offline_access", "email", "profile"],
      enabledJWA: { idTokenSigningAlgValues: ["RS256", "EdDSA"] },
    });
    for (const client of clients) {
      const found = await provider.Client.find(client.client_id).catch((error: { error_description?: string }) => {
        throw new Error(`${client.client_id}: ${error.error_description}`);
      });
      expect(found?.clientId, client.client_id).toBe(client.client_id);
    }
  });
});
