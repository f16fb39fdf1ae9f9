"""S3's XML: answers built as text with every value escaped, and the two request
bodies the gateway reads (CompleteMultipartUpload, DeleteObjects) parsed with
defusedxml under a size cap."""

from __future__ import annotations

import re
from collections.abc import Iterable
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from juststorage.s3.errors import S3Error, malformed_xml

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
# Characters XML 1.0 cannot carry even escaped: written as a character reference
# would not parse either, so they become U+FFFD (keys hold no control characters,
# but may hold U+FFFE/U+FFFF; `encoding-type=url` carries them exactly).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
MAX_REQUEST_XML_BYTES = 2 * 1024 * 1024  # 1000 keys of 1024 bytes, or 10000 parts, fit
# Anything `escape` changes: most values (keys, dates, ETags) hold none of it.
_SPECIAL = re.compile('[&<>"\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]')


def escape(text: str) -> str:
    """`text` as XML character data or attribute value."""
    if _SPECIAL.search(text) is None:
        return text
    text = (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\r", "&#13;")
    )
    return _NOT_XML.sub("\ufffd", text)


def element(name: str, value: str | int | bool | None) -> str:
    """`<name>value</name>`, or nothing for None."""
    if value is None:
        return ""
    text = ("true" if value else "false") if isinstance(value, bool) else escape(str(value))
    return f"<{name}>{text}</{name}>"


def document(root: str, parts: Iterable[str]) -> bytes:
    """A whole answer: the declaration, `root` in S3's namespace, its children."""
    return f'{HEAD}<{root} xmlns="{NAMESPACE}">{"".join(parts)}</{root}>'.encode()


def error_document(code: str, message: str, resource: str, request_id: str) -> bytes:
    return (
        f"{HEAD}<Error>{element('Code', code)}{element('Message', message)}"
        f"{element('Resource', resource)}{element('RequestId', request_id)}</Error>"
    ).encode()


def parse(body: bytes, root: str) -> Element:
    """The request body as an element tree whose root is `root` (namespaces dropped).

    Raises:
        S3Error: MalformedXML for anything else, or for DTDs and entities.
    """
    if len(body) > MAX_REQUEST_XML_BYTES:
        raise S3Error("MaxMessageLengthExceeded", "Your request was too big.", 400)
    try:
        tree = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError):
        raise malformed_xml() from None
    for node in tree.iter():
        if isinstance(node.tag, str) and node.tag.startswith("{"):
            node.tag = node.tag.split("}", 1)[1]
    if tree.tag != root:
        raise malformed_xml()
    return tree


def child_text(node: Element, name: str) -> str | None:
    found = node.find(name)
    if found is None:
        return None
    return found.text or ""
