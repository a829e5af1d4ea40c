"""The official stripe SDK as an independent oracle for webhook signatures.

    stripe_oracle.py verify PAYLOAD_FILE HEADER SECRET   exit 0 and print the event id when
                                                        Webhook.construct_event accepts it, 1 if not
    stripe_oracle.py sign PAYLOAD_FILE SECRET            print the Stripe-Signature header the SDK
                                                        makes for the payload now
"""

import sys

import stripe


def main() -> int:
    mode, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        payload = f.read()
    if mode == "verify":
        header, secret = sys.argv[3], sys.argv[4]
        try:
            event = stripe.Webhook.construct_event(payload, header, secret, tolerance=300)
        except (stripe.SignatureVerificationError, ValueError) as e:
            print(f"refused: {e}")
            return 1
        print(event["id"])
        return 0
    if mode == "sign":
        print(stripe.WebhookSignature.generate_signature_header(payload, sys.argv[3]))
        return 0
    print(f"unknown mode {mode}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
