"""A connection that failed, said plainly, from the text of the error that reports it:
yt-dlp's message and requests' exception both carry the reason deep in a Python repr
(``HTTPConnection(host='x', port=80): Failed to establish a new connection: [Errno 111]
Connection refused (caused by TransportError(...))``). Used for downloads (engine/failures.py),
the feeds and pages tasks read, and webhooks."""

from __future__ import annotations

import re

# The host and port a library names its connection by, in its repr: urllib3's
# HTTPConnection(Pool), yt-dlp's, and this service's checked subclasses of them.
CONNECTION_REPR = re.compile(
    r"\b(?:HTTPS?Connection(?:Pool)?|HTTPS?Pool|CheckedHTTPS?)\(host='(?P<host>[^']*)', "
    r"port=(?P<port>\d+)\):\s*")


def _where(text: str) -> str | None:
    found = CONNECTION_REPR.search(text)
    return f"{found['host']}:{found['port']}" if found else None


def unreached(text: str) -> str | None:
    """What went wrong, in words, when ``text`` reports a connection that could not be made
    or got no answer in time; None when it reports something else."""
    where = _where(text)
    if "Connection refused" in text:
        by = f" by {where}" if where else ""
        return (f"Connection refused{by}: nothing answers there (the site is down, or the "
                f"address or its port is wrong). Try again once it is up.")
    name = re.search(r"Failed to resolve '([^']*)'", text)
    if name or "Name or service not known" in text \
            or "Temporary failure in name resolution" in text:
        said = f"The name {name[1]}" if name else "The site's name"
        return (f"{said} could not be found (DNS): check the address for a typo, and that "
                f"this box reaches its name server.")
    if "CERTIFICATE_VERIFY_FAILED" in text:
        whose = f"The certificate of {where}" if where else "The site's certificate"
        return (f"{whose} is not valid (expired, for another name, or from no authority this "
                f"box trusts): its secure connection (HTTPS) cannot be trusted.")
    if "[SSL" in text or "SSLError" in text:
        return (f"A secure connection (HTTPS) to {where or 'the site'} could not be made: the "
                f"address may not serve HTTPS (try http://), or something on the way (a "
                f"proxy, a firewall) breaks it.")
    if re.search(r"timed out|Read timeout|ReadTimeout", text):
        return (f"{where or 'The site'} did not answer in time: it is slow or down. Try "
                f"again later.")
    return None
