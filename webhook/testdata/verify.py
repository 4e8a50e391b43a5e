"""Check a pairgate webhook: python3 verify.py KEY_HEX SIGNATURE_HEADER < body; exit 0 if valid."""
import hashlib, hmac, sys, time


def verify(key: bytes, header: str, body: bytes, tolerance: int = 300) -> bool:
    t, sigs = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and t is None and value.isascii() and value.isdigit():
            t = value
        elif name == "v1":
            sigs.append(value)
    if t is None or abs(time.time() - int(t)) > tolerance:
        return False  # no timestamp, or too old (a replay) or too new
    want = hmac.new(key, t.encode() + b"." + body, hashlib.sha256).hexdigest().encode()
    return any(hmac.compare_digest(want, s.encode()) for s in sigs)


if __name__ == "__main__":
    key = bytes.fromhex(sys.argv[1])  # from webhook_key.py
    ok = verify(key, sys.argv[2], sys.stdin.buffer.read())
    sys.exit(0 if ok else 1)
