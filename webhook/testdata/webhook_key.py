"""Print the webhook key (hex) of a pairing secret: python3 webhook_key.py /var/lib/pairgate/pairing.key"""
import hashlib, hmac, sys

secret = open(sys.argv[1], "rb").read()  # the 32 bytes of pairing.key
prk = hmac.new(b"\0" * 32, secret, hashlib.sha256).digest()  # HKDF-SHA256 extract, no salt
print(hmac.new(prk, b"pairgate/v1/webhook\x01", hashlib.sha256).hexdigest())  # expand: 32 bytes
