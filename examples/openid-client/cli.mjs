// A command-line tool signing in with PwdlessGs's device flow (RFC 8628), using openid-client:
// it prints a code and an address, the person opens APP_URL/device in any browser, and the tool
// gets its tokens. Register it as a public client with the device_code grant.
//
//   ISSUER=https://login.example.com CLIENT_ID=cli node examples/openid-client/cli.mjs
import * as client from "openid-client";

const issuer = new URL(process.env.ISSUER ?? "http://localhost:3000");
const config = await client.discovery(
  issuer,
  process.env.CLIENT_ID ?? "cli",
  undefined,
  client.None(),
  issuer.protocol === "http:" ? { execute: [client.allowInsecureRequests] } : undefined,
);

const device = await client.initiateDeviceAuthorization(config, { scope: "openid email offline_access" });
// one line for people, one for scripts (the tests read it)
console.log(`Open ${device.verification_uri} and type ${device.user_code}`);
console.log(JSON.stringify({ user_code: device.user_code, verification_uri: device.verification_uri }));

// polls at the interval the provider asks for, slowing down when told to, until approved or expired
const tokens = await client.pollDeviceAuthorizationGrant(config, device);
const claims = tokens.claims();
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
console.log(
  JSON.stringify({
    signed_in: true,
    sub: claims.sub,
    email: userinfo.email,
    has_refresh_token: !!tokens.refresh_token,
  }),
);
