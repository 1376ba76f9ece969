"""User-provided strings shown as text, never as Markdown or HTML.

Streamlit renders Markdown (with GitHub and Streamlit extensions: links,
images, autolinks, ``:red[...]`` colours, ``$`` maths, emoji shortcodes) in
titles, captions, alerts, metric and widget labels. Study and objective
names, metric names, user attributes, architecture strings and error texts
come from whoever wrote to the store, or from the page's URL: an objective
named ``![x](http://host/leak)`` would make every viewer's browser fetch that
URL. So every such string goes through :func:`as_text` before it is
interpolated into Markdown; ``st.code``, ``st.json``, dataframes, charts and
selectbox options show plain text already and need nothing.
"""

from __future__ import annotations

import re

#: ASCII punctuation with a meaning in CommonMark, GitHub Markdown or Streamlit's
#: directives (``&`` entities, ``<`` HTML and autolinks, ``:`` and ``@`` autolink
#: literals and shortcodes, ``$`` maths, ``|`` tables, ``~`` strikethrough,
#: ``# + - = . >`` block markers). A backslash makes each one literal.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-=.!|~$:&@])")
#: Where GitHub Markdown's autolink literals start (``http://``, ``www.``, ``user@host``). They
#: are found in the text *after* escapes are resolved, so a backslash cannot stop them.
_AUTOLINK = re.compile(r"(?i)(?<=[a-z])(?=://)|(?<=\bwww)(?=\.)|(?=@)")
#: U+2060 WORD JOINER: invisible, not a space, breaks the autolink patterns above.
WORD_JOINER = "\u2060"


def as_text(value: object) -> str:
    """``value`` as Markdown that renders exactly its characters (no link, image, HTML or format).

    Line breaks are kept: with every block marker escaped, a new line cannot
    start a heading, list, quote, table or fence. A URL in the text stays
    plain text too: an invisible :data:`WORD_JOINER` goes before its ``://``
    (or ``www``'s dot, or an ``@``), so it is not turned into a link.
    """
    return _SPECIAL.sub(r"\\\1", _AUTOLINK.sub(WORD_JOINER, str(value)))
