#!/usr/bin/env python3
"""Verify a PwdlessGs access token the way another service would: with the JWKS URL only, no secret.

Usage: verify_access_token.py --jwks URL --issuer ISS --audience AUD TOKEN
Prints the claims as JSON and exits 0 when the token is valid; prints why and exits 1 otherwise.
Needs only the standard library and `cryptography` (Debian: python3-cryptography); with PyJWT
installed the same check is `jwt.decode(token, PyJWKClient(url).get_signing_key_from_jwt(token).key,
algorithms=["EdDSA"], issuer=ISS, audience=AUD)`.
"""
import argparse
import base64
import json
import sys
import time
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify(token: str, jwks_url: str, issuer: str, audience: str) -> dict:
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(b64url(header_b64))
        payload = json.loads(b64url(payload_b64))
        signature = b64url(signature_b64)
    except ValueError as error:
        raise ValueError(f"not a JWT: {error}") from None
    # only EdDSA: never let the token choose a weaker algorithm (or "none")
    if header.get("alg") != "EdDSA":
        raise ValueError(f"algorithm {header.get('alg')!r} refused")
    with urllib.request.urlopen(jwks_url, timeout=5) as response:
        keys = json.load(response)["keys"]
    key = next((k for k in keys if k.get("kid") == header.get("kid")), None)
    if key is None or key.get("kty") != "OKP" or key.get("crv") != "Ed25519":
        raise ValueError("no Ed25519 key with this kid in the JWKS")
    try:
        Ed25519PublicKey.from_public_bytes(b64url(key["x"])).verify(
            signature, f"{header_b64}.{payload_b64}".encode()
        )
    except InvalidSignature:
        raise ValueError("bad signature") from None
    now = time.time()
    if payload.get("iss") != issuer:
        raise ValueError("wrong issuer")
    audiences = payload.get("aud") if isinstance(payload.get("aud"), list) else [payload.get("aud")]
    if audience not in audiences:
        raise ValueError("wrong audience")
    if not isinstance(payload.get("exp"), (int, float)) or payload["exp"] <= now:
        raise ValueError("expired")
    return payload


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jwks", required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--audience", required=True)
    parser.add_argument("token")
    args = parser.parse_args()
    try:
        claims = verify(args.token, args.jwks, args.issuer, args.audience)
    except ValueError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 1
    print(json.dumps(claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
