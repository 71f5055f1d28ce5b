"""Keys and tokens for `make bench`, minted fresh on every run.

One RSA-2048 key (kid `bench-rsa-1`) signs Cognito-shaped client-credentials
access tokens (RS256, header exactly {"kid","alg"} as Cognito writes it):

  jwks.json       the public JWKS both Envoy filters are configured with
  token.txt       one valid token (scenario 1: repeated)
  tokens.txt      N distinct valid tokens, one a line (scenario 2: rotating;
                  each differs in `jti`, so both caches key them apart)
  bad.json        tokens each listener must refuse (sanity checks)

Signing uses `cryptography` (OpenSSL), which scripts/setup-demo.sh installs
into .venv; N tokens are signed on all cores.
"""

import base64
import concurrent.futures
import json
import multiprocessing
import os
import sys
import time
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KID = "bench-rsa-1"
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_BenchPool1"
CLIENT_ID = "4bench0client0id0000000000"
SCOPE = "order/post.order"

_key = None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def claims(now: int, **over) -> dict:
    c = {
        "sub": CLIENT_ID,
        "token_use": "access",
        "scope": SCOPE,
        "auth_time": now,
        "iss": ISSUER,
        "exp": now + 6 * 3600,
        "iat": now,
        "version": 2,
        "jti": str(uuid.uuid4()),
        "client_id": CLIENT_ID,
    }
    c.update(over)
    return c


def sign(key, payload: dict, kid: str = KID) -> str:
    header = json.dumps({"kid": kid, "alg": "RS256"}, separators=(",", ":"))
    body = json.dumps(payload, separators=(",", ":"))
    signing_input = f"{b64url(header.encode())}.{b64url(body.encode())}"
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(sig)}"


def _init_worker(pem: bytes) -> None:
    global _key
    _key = serialization.load_pem_private_key(pem, password=None)


def _mint_one(now: int) -> str:
    return sign(_key, claims(now))


def generate(out_dir: str, count: int) -> dict:
    os.makedirs(out_dir, exist_ok=True)
    started = time.time()
    now = int(started)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = key.public_key().public_numbers()
    jwks = {
        "keys": [
            {
                "kty": "RSA",
                "kid": KID,
                "use": "sig",
                "alg": "RS256",
                "n": b64url(_int_bytes(pub.n)),
                "e": b64url(_int_bytes(pub.e)),
            }
        ]
    }
    with open(os.path.join(out_dir, "jwks.json"), "w") as f:
        json.dump(jwks, f)

    token = sign(key, claims(now))
    with open(os.path.join(out_dir, "token.txt"), "w") as f:
        f.write(token + "\n")

    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # A process pool, not multiprocessing.Pool: when a worker dies, Pool.map
    # waits forever (a bench run hung so), the executor raises instead, and
    # the tokens are then minted here, slower but surely.
    try:
        with concurrent.futures.ProcessPoolExecutor(
            os.cpu_count() or 1,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_init_worker,
            initargs=(pem,),
        ) as pool:
            tokens = list(pool.map(_mint_one, [now] * count, chunksize=500))
    except concurrent.futures.process.BrokenProcessPool as e:
        print(f"bench: token minting pool failed ({e}); minting in one process", file=sys.stderr)
        _init_worker(pem)
        tokens = [_mint_one(now) for _ in range(count)]
    assert len(set(tokens)) == count, "tokens must be distinct"
    with open(os.path.join(out_dir, "tokens.txt"), "w") as f:
        f.write("\n".join(tokens) + "\n")

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    head, body, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[len(raw) // 2] ^= 0x01
    bad = {
        # name: (token, what it tests)
        "no token": None,
        "bad signature": f"{head}.{body}.{b64url(bytes(raw))}",
        "other key, same kid": sign(other, claims(now)),
        "expired": sign(key, claims(now, exp=now - 3600, iat=now - 7200)),
        "wrong issuer": sign(key, claims(now, iss=ISSUER + "x")),
        "wrong client_id": sign(key, claims(now, client_id="other-client", sub="other-client")),
        "wrong token_use (id)": sign(key, claims(now, token_use="id")),
        "missing scope": sign(key, claims(now, scope="order/get.order")),
        "scope prefix only": sign(key, claims(now, scope="order/post.orders")),
    }
    with open(os.path.join(out_dir, "bad.json"), "w") as f:
        json.dump(bad, f, indent=1)
    return {
        "jwks": jwks,
        "token": token,
        "count": count,
        "token_bytes": len(token),
        "seconds": time.time() - started,
    }


if __name__ == "__main__":
    info = generate(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30000)
    print(f"{info['count']} tokens of {info['token_bytes']} bytes in {info['seconds']:.1f} s")
