"""Prints the messages an aiosmtpd Mailbox sink received (a Maildir) as JSON, parsed by Python's
own e-mail package: recipient, subject, and the text and HTML bodies decoded.

usage: read_maildir.py MAILDIR
"""

import json
import mailbox
import re
import sys
from email import policy
from email.parser import BytesParser

messages = []
box = mailbox.Maildir(sys.argv[1], create=False)


def delivered(key):
    """When the message arrived: a Maildir key starts `SECONDS.MMICROSECONDS…`."""
    found = re.match(r"(\d+)\.M(\d+)", key)
    return (int(found[1]), int(found[2])) if found else (0, 0)


for key in sorted(box.keys(), key=delivered):
    with box.get_file(key) as f:
        message = BytesParser(policy=policy.default).parse(f)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    messages.append(
        {
            "to": message["to"],
            "from": message["from"],
            "subject": message["subject"],
            "text": text.get_content() if text else "",
            "html": html.get_content() if html else "",
        }
    )
print(json.dumps(messages))
