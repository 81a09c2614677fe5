"""Verifies one webhook delivery with the reference `standardwebhooks`
library from PyPI, an implementation independent of tokenkeeper's.

Reads JSON from stdin: {"secret", "headers": {name: value}, "body"}.
Exits 0 when the signature verifies, 1 (with the library's reason) when
not, and 3 when the library is not installed.
"""

import json
import sys

try:
    from standardwebhooks.webhooks import Webhook
except ImportError:
    print("standardwebhooks is not installed", file=sys.stderr)
    sys.exit(3)

given = json.load(sys.stdin)
try:
    payload = Webhook(given["secret"]).verify(given["body"], given["headers"])
except Exception as e:  # the library raises WebhookVerificationError
    print(f"refused: {e}", file=sys.stderr)
    sys.exit(1)
print(json.dumps(payload))
