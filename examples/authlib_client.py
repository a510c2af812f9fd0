#!/usr/bin/env python3
"""An app signing people in with PwdlessGs using Authlib (Python), a library independent of the
provider's: the authorization code flow with PKCE (S256), the ID token checked against the
provider's published keys (issuer, audience, nonce, expiry), then userinfo.

Debian: apt-get install python3-authlib python3-requests. Run it beside a browser:

    ISSUER=https://login.example.com CLIENT_ID=web CLIENT_SECRET=... \\
    REDIRECT_URI=http://127.0.0.1:8000/callback python3 examples/authlib_client.py

It prints {"authorization_url": ...}: open it, sign in, then paste the address the browser was
sent back to (the redirect URI with ?code=...) as one line. It prints what it learned as JSON.
"""

import json
import os
import sys

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken

issuer = os.environ["ISSUER"]
client_id = os.environ["CLIENT_ID"]
client_secret = os.environ.get("CLIENT_SECRET")
redirect_uri = os.environ["REDIRECT_URI"]

meta = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
if meta["issuer"] != issuer:
    sys.exit(f"discovery names issuer {meta['issuer']}, expected {issuer}")

session = OAuth2Session(
    client_id,
    client_secret,
    scope="openid email",
    redirect_uri=redirect_uri,
    code_challenge_method="S256",
    token_endpoint_auth_method="client_secret_basic" if client_secret else "none",
)
verifier = generate_token(48)
nonce = generate_token(20)
url, state = session.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
print(json.dumps({"authorization_url": url}), flush=True)

callback = sys.stdin.readline().strip()
# fetch_token checks the state in the callback, and sends the PKCE verifier with the code
token = session.fetch_token(
    meta["token_endpoint"], authorization_response=callback, state=state, code_verifier=verifier
)

keys = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
claims = jwt.decode(
    token["id_token"],
    keys,
    claims_cls=CodeIDToken,
    claims_options={"iss": {"essential": True, "value": issuer}},
    claims_params={"nonce": nonce, "client_id": client_id},
)
claims.validate()
userinfo = session.get(meta["userinfo_endpoint"], timeout=10).json()
print(
    json.dumps(
        {
            "sub": claims["sub"],
            "email": claims.get("email"),
            "email_verified": claims.get("email_verified"),
            "alg": claims.header["alg"],
            "userinfo_sub": userinfo.get("sub"),
            "userinfo_email": userinfo.get("email"),
        }
    ),
    flush=True,
)
