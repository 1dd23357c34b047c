#!/usr/bin/env python3
"""Build a known-item retrieval evaluation set from the PostgreSQL 15 HTML documentation.

Source: Debian's `postgresql-doc-15` package (HTML under /usr/share/doc/postgresql-doc-15/html/).
Each selected page is one document whose id is its file name (e.g. `sql-vacuum.html`).

Outputs (all deterministic for a given source, seed and settings):
  --out DIR          the corpus: copies of the selected HTML pages and nothing else, so that
                     `hearth ingest DIR --kb pgdocs` ingests exactly the corpus
  --queries FILE     one JSON object per line:
                     {"id": "q1", "query": "...", "relevant": ["x.html"], "kind": "title"|"sentence"|"paraphrase"}
  --page-list FILE   the selected page file names, one per line, sorted

Query kinds:
  title       the page's <title> without its numbering ("25.1. Routine Vacuuming" -> "Routine Vacuuming")
  sentence    one prose sentence (12-30 words, no code) copied verbatim from the page body
  paraphrase  keyword-style query made by rule from another prose sentence of the page:
              stopwords and corpus-common words dropped, word order kept, at most 8 words

Each query has exactly one relevant page. Uniqueness is checked against the body text (navigation
header/footer excluded, case-insensitive, whitespace collapsed) of every eligible page, a superset
of any corpus the script writes: a title or sentence found on two pages is dropped, and so is a
keyword query whose words all occur on another page.

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import time
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = Path("/usr/share/doc/postgresql-doc-15/html")

MIN_WORDS = 300  # body words outside navigation and tables of contents
MAX_LINK_SHARE = 0.5  # share of body words that are link text (TOC included)
SKIP_PAGES = {"index.html", "bookindex.html", "legalnotice.html"}

VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
             "param", "source", "track", "wbr"}
BLOCK_TAGS = {"p", "div", "li", "dt", "dd", "td", "th", "tr", "table", "h1", "h2", "h3", "h4",
              "h5", "h6", "pre", "ul", "ol", "dl", "blockquote", "br", "hr", "caption", "thead",
              "tbody", "body", "html", "title"}
CODE_TAGS = {"code", "pre", "kbd", "samp", "tt", "var"}
CODE_CLASSES = {"replaceable", "parameter", "userinput", "systemitem", "optional", "token",
                "symbol", "programlisting", "synopsis", "screen", "literallayout", "command",
                "computeroutput", "prompt", "returnvalue"}
NAV_CLASSES = {"navheader", "navfooter"}

STOPWORDS = set("""
a about above after again against all almost also although always am among an and another any
are aren't as at be because been before being below between both but by can cannot could did do
does doing done down during each either else even ever every few for from further get gets given
had has have having he her here hers herself him himself his how however i if in into is isn't it
its itself just least less let like made make makes many may me might more most much must my
myself need needs neither no nor not now of off often on once one only onto or other others
otherwise our ours ourselves out over own per perhaps rather really same say says see seen shall
she should since so some something still such than that the their theirs them themselves then
there therefore these they thing things this those though through thus to together too toward
towards two under unless until up upon us use used uses using usually very via was wasn't way we
well were what whatever when whenever where whereas wherever whether which while who whom whose
why will with within without would yet you your yours yourself yourselves
actually already anything anyway currently especially essentially everything exactly fairly
following generally instead likely merely mostly necessarily nothing particularly possible
possibly previously probably quite rarely recently relatively simply somewhat typically
""".split())

WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9'-]*[A-Za-z0-9]|[A-Za-z]")
TITLE_PREFIX_RE = re.compile(
    r"^(?:PostgreSQL:\s*Documentation:\s*[\d.]+:\s*)?"  # postgresql.org page titles
    r"(?:(?:Chapter|Part|Appendix|Preface)\s+[A-Z0-9]+\.\s+)?"  # "Chapter 25. ", "Part III. "
    r"(?:(?:[A-Z]|\d+)(?:\.\d+)*\.\s+)?"  # "25.1. ", "F.38. "
)
XREF_RE = re.compile(r"\b(?:Section|Chapter|Table|Figure|Example|Appendix|Part)\s+[A-Z]?\d")
NOT_PROSE_RE = re.compile(r"[_(){}\[\]<>=;$`|#*/\\@%~^\"]")
CAMEL_RE = re.compile(r"[a-z][A-Z]")  # identifiers such as AuthenticationSASLContinue
ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "al.", "approx.", "resp.", "Inc.")


def squash(text: str) -> str:
    return " ".join(text.split())


def words(text: str) -> list[str]:
    return WORD_RE.findall(text)


class Page(HTMLParser):
    """Title, body text and prose paragraphs of one DocBook-generated HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict]] = []
        self.title_parts: list[str] = []
        self.body: list[str] = []  # text outside <head> and the navigation header/footer
        self.content_words = 0  # ... and outside tables of contents
        self.toc_words = 0
        self.link_words = 0  # link text outside tables of contents
        self.paragraphs: list[list[tuple[str, bool]]] = []  # (text, is_code) segments
        self._para: list[tuple[str, bool]] | None = None

    def _flags(self) -> dict:
        return self.stack[-1][1] if self.stack else {}

    def handle_starttag(self, tag, attrs):
        classes = set((dict(attrs).get("class") or "").split())
        if tag in BLOCK_TAGS:
            self._boundary()
        if tag in VOID_TAGS:
            return
        flags = dict(self._flags())
        if tag == "head":
            flags["head"] = True
        if tag == "title":
            flags["title"] = True
        if classes & NAV_CLASSES:
            flags["nav"] = True
        if "toc" in classes:
            flags["toc"] = True
        if tag in CODE_TAGS or classes & CODE_CLASSES:
            flags["code"] = True
        if tag == "a":
            flags["link"] = True
        flags.pop("para", None)  # set on the <p> element itself only
        if tag == "p" and self._para is None and not flags.get("nav") and not flags.get("toc"):
            flags["para"] = True
            self._para = []
        self.stack.append((tag, flags))

    def handle_startendtag(self, tag, attrs):
        if tag in BLOCK_TAGS:
            self._boundary()

    def handle_endtag(self, tag):
        if tag in VOID_TAGS:
            return
        # Pop up to and including the matching element (the pages are XHTML, so this is exact).
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                for closed, flags in reversed(self.stack[i:]):
                    if flags.get("para") and self._para is not None:
                        self.paragraphs.append(self._para)
                        self._para = None
                del self.stack[i:]
                break
        if tag in BLOCK_TAGS:
            self._boundary()

    def _boundary(self):
        self.body.append(" ")
        if self._para is not None:
            self._para.append((" ", False))

    def handle_data(self, data):
        flags = self._flags()
        if flags.get("title"):
            self.title_parts.append(data)
            return
        if flags.get("head") or flags.get("nav"):
            return
        self.body.append(data)
        n = len(data.split())
        if flags.get("toc"):
            self.toc_words += n
        else:
            self.content_words += n
            if flags.get("link"):
                self.link_words += n
        if self._para is not None:
            self._para.append((data, bool(flags.get("code"))))

    # -- results ---------------------------------------------------------------------------

    @property
    def title(self) -> str:
        return squash("".join(self.title_parts))

    @property
    def body_text(self) -> str:
        return squash("".join(self.body))

    def sentences(self) -> list[tuple[str, bool]]:
        """Sentences of the prose paragraphs, each with whether any of it is code."""
        out = []
        for para in self.paragraphs:
            chars: list[str] = []
            code: list[bool] = []
            for text, is_code in para:
                for ch in text:
                    if ch.isspace():
                        if chars and chars[-1] != " ":
                            chars.append(" ")
                            code.append(False)
                    else:
                        chars.append(ch)
                        code.append(is_code)
            text = "".join(chars)
            start = 0
            for m in re.finditer(r"[.!?](?= [A-Z])", text):
                end = m.end()
                if text[:end].endswith(ABBREVIATIONS) or re.search(r"\b[A-Z]\.$", text[:end]):
                    continue
                out.append((text[start:end].strip(), any(code[start:end])))
                start = end
            out.append((text[start:].strip(), any(code[start:])))
        return [(s, c) for s, c in out if s]


def strip_title(title: str) -> str:
    return TITLE_PREFIX_RE.sub("", title).strip()


def prose_sentence(sentence: str, has_code: bool) -> bool:
    n = len(sentence.split())
    return (
        not has_code
        and 12 <= n <= 30
        and sentence[0].isupper()
        and sentence.endswith(".")
        and not sentence.endswith(ABBREVIATIONS)
        and not NOT_PROSE_RE.search(sentence)
        and not XREF_RE.search(sentence)
        and sum(c.isdigit() for c in sentence) <= 2
        and not CAMEL_RE.search(sentence.replace("PostgreSQL", ""))
    )


def content_words(sentence: str) -> list[str]:
    """Lower-cased words of `sentence` without stopwords, short words and possessive 's."""
    return [w for w in map(norm, words(sentence)) if w not in STOPWORDS and len(w) > 2]


def norm(word: str) -> str:
    return word.lower().removesuffix("'s").strip("'-")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                    help=f"the HTML docs (default {DEFAULT_SOURCE})")
    ap.add_argument("--out", type=Path, default=HERE / "out",
                    help="corpus folder to write (default bench/retrieval/out/)")
    ap.add_argument("--queries", type=Path, default=HERE / "queries.jsonl",
                    help="query file to write (default bench/retrieval/queries.jsonl)")
    ap.add_argument("--page-list", type=Path, default=HERE / "pages.txt",
                    help="list of selected pages to write (default bench/retrieval/pages.txt)")
    ap.add_argument("--pages", type=int, default=400, help="corpus size in pages (default 400)")
    ap.add_argument("--titles", type=int, default=70)
    ap.add_argument("--sentences", type=int, default=70)
    ap.add_argument("--paraphrases", type=int, default=60)
    ap.add_argument("--seed", type=int, default=15)
    args = ap.parse_args()
    started = time.monotonic()

    if not args.source.is_dir():
        print(f"{args.source} not found: apt-get install -y postgresql-doc-15", file=sys.stderr)
        return 1

    # 1. Read every page; keep the eligible ones.
    pages: dict[str, Page] = {}
    skipped = Counter()
    all_titles = Counter()
    n_source = 0
    for path in sorted(args.source.glob("*.html")):
        page = Page()
        page.feed(path.read_text(encoding="utf-8"))
        page.close()
        n_source += 1
        all_titles[strip_title(page.title).lower()] += 1
        name = path.name
        if name in SKIP_PAGES:
            skipped["index or legal notice"] += 1
        elif name.startswith("release-") or name == "release.html":
            skipped["release notes"] += 1
        elif page.content_words < MIN_WORDS:
            skipped[f"< {MIN_WORDS} words"] += 1
        elif (page.link_words + page.toc_words) > MAX_LINK_SHARE * (page.content_words + page.toc_words):
            skipped["mostly links"] += 1
        else:
            pages[name] = page
    names = sorted(pages)
    texts = {n: pages[n].body_text.lower() for n in names}
    haystack = "\x00".join(texts[n] for n in names)
    word_sets = {n: set(map(norm, words(pages[n].body_text))) for n in names}
    doc_freq = Counter(w for s in word_sets.values() for w in s)
    common = {w for w, df in doc_freq.items() if df > 0.25 * len(names)}

    def occurrences(query: str) -> int:
        """Number of eligible pages whose body text contains `query` (case-insensitive)."""
        needle = query.lower()
        count, pos = 0, haystack.find(needle)
        while pos != -1:
            count += 1
            nxt = haystack.find("\x00", pos)
            if nxt == -1:
                break
            pos = haystack.find(needle, nxt)
        return count

    rng = random.Random(args.seed)
    order = names[:]
    rng.shuffle(order)
    used: set[str] = set()
    queries: list[dict] = []
    dropped = Counter()

    # 2a. Title queries.
    for name in order:
        if sum(q["kind"] == "title" for q in queries) >= args.titles:
            break
        title = strip_title(pages[name].title)
        if len(title.split()) < 2 or len(title) < 10:
            continue
        if all_titles[title.lower()] > 1:
            dropped["title: shared by several pages"] += 1
            continue
        found = occurrences(title)
        if found != 1:
            dropped["title: " + ("not found in its page" if found == 0 else "text on another page")] += 1
            continue
        queries.append({"query": title, "relevant": [name], "kind": "title"})
        used.add(name)

    # 2b. Sentence queries and 2c. keyword ("paraphrase") queries, each from a page not used yet.
    def candidates(name: str) -> list[str]:
        found = [s for s, code in pages[name].sentences() if prose_sentence(s, code)]
        return [s for s in dict.fromkeys(found) if len(content_words(s)) >= 7]

    for kind, quota in (("sentence", args.sentences), ("paraphrase", args.paraphrases)):
        rest = [n for n in order if n not in used]
        rng.shuffle(rest)
        made = 0
        for name in rest:
            if made >= quota:
                break
            options = candidates(name)
            rng.shuffle(options)
            for sentence in options:
                found = occurrences(sentence)
                if found != 1:
                    why = "not found in its page" if found == 0 else "sentence on another page"
                    dropped[f"{kind}: {why}"] += 1
                    continue
                if kind == "sentence":
                    query = sentence
                else:
                    keys = [w for w in dict.fromkeys(content_words(sentence)) if w not in common]
                    if len(keys) < 5:
                        dropped["paraphrase: < 5 distinctive words"] += 1
                        continue
                    keys = keys[:8]
                    if any(all(k in word_sets[o] for k in keys) for o in names if o != name):
                        dropped["paraphrase: all words on another page"] += 1
                        continue
                    query = " ".join(keys)
                queries.append({"query": query, "relevant": [name], "kind": kind})
                used.add(name)
                made += 1
                break

    for i, q in enumerate(queries, 1):
        q_id = {"id": f"q{i}"}
        q_id.update(q)
        queries[i - 1] = q_id

    # 3. The corpus: every page a query points at, then random other eligible pages up to --pages.
    fill = [n for n in order if n not in used]
    rng.shuffle(fill)
    corpus = sorted(used | set(fill[: max(0, args.pages - len(used))]))
    if len(used) > args.pages:
        print(f"warning: {len(used)} pages are query targets, more than --pages {args.pages}",
              file=sys.stderr)

    out = args.out
    if out.exists():
        stray = [p.name for p in out.iterdir() if p.suffix != ".html"]
        if stray:
            print(f"{out} holds files other than .html pages ({', '.join(stray[:3])}); "
                  "refusing to clear it", file=sys.stderr)
            return 1
        for p in out.glob("*.html"):
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    for name in corpus:
        shutil.copyfile(args.source / name, out / name)

    args.queries.parent.mkdir(parents=True, exist_ok=True)
    with args.queries.open("w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    args.page_list.parent.mkdir(parents=True, exist_ok=True)
    args.page_list.write_text("".join(n + "\n" for n in corpus), encoding="utf-8")

    # 4. Counts.
    kinds = Counter(q["kind"] for q in queries)
    size = sum((args.source / n).stat().st_size for n in corpus)
    corpus_words = sum(pages[n].content_words + pages[n].toc_words for n in corpus)
    log = lambda *a: print(*a, file=sys.stderr)  # noqa: E731
    log(f"source pages: {n_source}, eligible: {len(names)}, skipped: "
        + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())))
    log(f"corpus: {len(corpus)} pages, {size / 1e6:.2f} MB of HTML, {corpus_words:,} words of body text "
        f"-> {out}")
    log(f"queries: {len(queries)} ({', '.join(f'{k} {kinds[k]}' for k in ('title', 'sentence', 'paraphrase'))})"
        f" -> {args.queries}")
    log("dropped candidates: " + ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())))
    log(f"page list -> {args.page_list}; {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
