//! HTML: converted to Markdown by `htmd` (scripts, styles and navigation skipped), then read as
//! Markdown so headings, lists, code and tables keep their structure. Navigation is `<nav>`, and
//! also the blocks sites mark as navigation by role, class or id (`role="navigation"`,
//! `class="navheader"`, `id="breadcrumbs"`…): page chrome repeated on every page would otherwise
//! make each page match its neighbours' titles.
//!
//! Deep nesting is checked twice. html5ever's tree builder looks through the stack of open
//! elements for every tag, so a page of 100,000 nested `<div>`s costs it minutes of CPU: a
//! linear pass over html5ever's own tokenizer ([`nesting_exceeds`]) estimates the depth first
//! and refuses the page past twice the limit. `htmd` then walks the built tree recursively, so
//! the tree's real depth is checked (iteratively) against `ParseLimits::max_depth` before it
//! does: such a page fails with a reason instead of overflowing the stack. `fetch_url` uses the
//! same conversion.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use html5ever::TokenizerResult;

use super::{markdown, squash_whitespace, ParseError, ParseLimits, ParsedDocument};

/// Elements whose content is never document text.
const SKIPPED_TAGS: [&str; 11] = [
    "head", "script", "style", "noscript", "template", "nav", "svg", "canvas", "iframe", "object",
    "button",
];

/// Block elements that may be page chrome, checked for navigation markers.
const CHROME_CANDIDATES: [&str; 8] = [
    "div", "table", "ul", "ol", "section", "header", "footer", "aside",
];

/// Whole class names, or ids, that mark a block as navigation. Whole names only: themes build
/// layout wrappers from the same words (`wy-nav-content` holds the whole article).
const NAVIGATION_NAMES: [&str; 14] = [
    "nav",
    "navbar",
    "navheader",
    "navfooter",
    "navigation",
    "breadcrumb",
    "breadcrumbs",
    "menu",
    "sidebar",
    "skip-link",
    "site-nav",
    "site-header",
    "site-footer",
    "toc-sidebar",
];

/// Whether an element's role, class or id marks it as navigation.
fn is_navigation(element: &htmd::Element) -> bool {
    element.attrs.iter().any(|a| {
        let value = a.value.to_ascii_lowercase();
        match &*a.name.local {
            "role" => value == "navigation" || value == "menu" || value == "menubar",
            "class" => value
                .split_whitespace()
                .any(|name| NAVIGATION_NAMES.contains(&name)),
            "id" => NAVIGATION_NAMES.contains(&value.trim()),
            _ => false,
        }
    })
}

pub(super) fn parse(html: &str, limits: &ParseLimits) -> Result<ParsedDocument, ParseError> {
    let markdown = html_to_markdown(html, &[], limits)?;
    let mut document = markdown::parse(&markdown, limits)?;
    if let Some(title) = title_element(html) {
        document.title = Some(title);
    }
    Ok(document)
}

/// HTML to Markdown (scripts, styles, navigation and the `also_skip` elements dropped),
/// refusing trees nested deeper than `limits.max_depth` before anything walks them recursively.
/// Takes time in proportion to the page: call it off the async threads.
pub fn html_to_markdown(
    html: &str,
    also_skip: &[&str],
    limits: &ParseLimits,
) -> Result<String, ParseError> {
    if nesting_exceeds(html, limits.max_depth.saturating_mul(2)) {
        return Err(ParseError::TooDeep {
            limit: limits.max_depth,
        });
    }
    let mut skipped = SKIPPED_TAGS.to_vec();
    skipped.extend_from_slice(also_skip);
    let converter = htmd::HtmlToMarkdown::builder()
        .skip_tags(skipped)
        .add_handler(
            CHROME_CANDIDATES.to_vec(),
            |handlers: &dyn htmd::element_handler::Handlers, element: htmd::Element| {
                if is_navigation(&element) {
                    None
                } else {
                    handlers.fallback(element)
                }
            },
        )
        .build();
    let tree = converter
        .html_to_tree(html)
        .map_err(|e| ParseError::Corrupt(format!("the HTML could not be read: {e}")))?;
    if depth_exceeds(&tree, limits.max_depth) {
        return Err(ParseError::TooDeep {
            limit: limits.max_depth,
        });
    }
    Ok(converter.tree_to_markdown(&tree))
}

/// Whether the page's tags nest more than `max` deep, estimated in one pass of the tokenizer:
/// elements stay open until their end tag (which also closes what it encloses), except those
/// that never hold content (void, self-closed, raw text) or that the next sibling closes
/// (`p`, `li`, `td`...). It reads no further than `max` open elements, so it stays linear.
fn nesting_exceeds(html: &str, max: usize) -> bool {
    let probe = DepthProbe {
        open: RefCell::new(Vec::new()),
        max,
        exceeded: Cell::new(false),
    };
    let tokenizer = Tokenizer::new(probe, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    while let TokenizerResult::Script(_) = tokenizer.feed(&input) {}
    tokenizer.end();
    tokenizer.sink.exceeded.get()
}

struct DepthProbe {
    /// Names of the open elements, outermost first.
    open: RefCell<Vec<String>>,
    max: usize,
    exceeded: Cell<bool>,
}

/// Elements with no content of their own.
const VOID: [&str; 16] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param", "keygen", "frame",
];

/// Elements of HTML's "special" category that the probe may hold open: an ordinary element's end
/// tag cannot close past them.
const SPECIAL: [&str; 41] = [
    "address",
    "applet",
    "article",
    "aside",
    "blockquote",
    "button",
    "center",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "listing",
    "main",
    "marquee",
    "menu",
    "nav",
    "object",
    "ol",
    "pre",
    "section",
    "select",
    "summary",
    "table",
    "template",
    "ul",
    "math",
    "svg",
];

/// Elements the parser closes when a sibling (or the document's structure) starts.
const CLOSED_BY_SIBLINGS: [&str; 21] = [
    "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot", "rb",
    "rt", "rp", "rtc", "caption", "colgroup", "html", "head", "body",
];

impl TokenSink for DepthProbe {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let Token::TagToken(tag) = token else {
            return TokenSinkResult::Continue;
        };
        if self.exceeded.get() {
            return TokenSinkResult::Continue;
        }
        let name: &str = &tag.name;
        match tag.kind {
            TagKind::StartTag => {
                // The tokenizer needs to know where raw text starts, as the tree builder would
                // tell it.
                let raw = match name {
                    "script" => Some(TokenSinkResult::RawData(RawKind::ScriptData)),
                    "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
                        Some(TokenSinkResult::RawData(RawKind::Rawtext))
                    }
                    "title" | "textarea" => Some(TokenSinkResult::RawData(RawKind::Rcdata)),
                    "plaintext" => Some(TokenSinkResult::Plaintext),
                    _ => None,
                };
                if let Some(raw) = raw {
                    return if tag.self_closing {
                        TokenSinkResult::Continue
                    } else {
                        raw
                    };
                }
                if tag.self_closing || VOID.contains(&name) || CLOSED_BY_SIBLINGS.contains(&name) {
                    return TokenSinkResult::Continue;
                }
                let mut open = self.open.borrow_mut();
                open.push(name.to_owned());
                if open.len() > self.max {
                    self.exceeded.set(true);
                }
            }
            TagKind::EndTag => {
                // As the tree builder does: an end tag closes its element and all inside it,
                // but an ordinary element's end tag is ignored when a special element (a
                // `div`, a table...) is open inside it (`<span><div></span>` nests).
                let mut open = self.open.borrow_mut();
                if let Some(at) = open.iter().rposition(|o| o == name) {
                    let blocked = !SPECIAL.contains(&name)
                        && open[at + 1..].iter().any(|o| SPECIAL.contains(&o.as_str()));
                    if !blocked {
                        open.truncate(at);
                    }
                }
            }
        }
        TokenSinkResult::Continue
    }
}

/// Whether any node of the tree sits more than `max` levels below the root (without recursion).
fn depth_exceeds(root: &Rc<htmd::Node>, max: usize) -> bool {
    let mut stack = vec![(Rc::clone(root), 0usize)];
    while let Some((node, depth)) = stack.pop() {
        if depth > max {
            return true;
        }
        for child in node.children.borrow().iter() {
            stack.push((Rc::clone(child), depth + 1));
        }
    }
    false
}

/// The text of the first `<title>` element; a plain search is enough for this one element.
fn title_element(html: &str) -> Option<String> {
    // ASCII lowercasing keeps byte offsets valid for slicing the original.
    let lower = html.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let content_start = open + lower[open..].find('>')? + 1;
    let content_end = content_start + lower[content_start..].find("</title")?;
    let raw = squash_whitespace(&html[content_start..content_end]);
    let title = match quick_xml::escape::unescape(&raw) {
        Ok(text) => text.into_owned(),
        // Named HTML entities beyond XML's five are left as written.
        Err(_) => raw,
    };
    (!title.is_empty()).then_some(title)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::BlockKind;

    fn parse(html: &str) -> Result<ParsedDocument, ParseError> {
        super::parse(html, &ParseLimits::default())
    }

    #[test]
    fn the_depth_estimate_follows_implied_and_enclosing_closes() {
        // Closed by an enclosing end tag, by a sibling, or never opened: all shallow.
        let shallow = "<div><span>x</div>".repeat(5_000)
            + &"<p>para".repeat(5_000)
            + &"<li>item".repeat(5_000)
            + &"<br><img src=x><hr/>".repeat(5_000)
            + "<script>"
            + &"<div>".repeat(5_000)
            + "</script>";
        assert!(!nesting_exceeds(&shallow, 512));
        assert!(parse(&shallow).is_ok());
        assert!(nesting_exceeds(&"<span><b><i>".repeat(200), 512));
        // `</span>` does not close past a `div` opened inside it: this nests.
        assert!(nesting_exceeds(&"<span><div></span>".repeat(400), 512));
        assert!(!nesting_exceeds(&"<span><b><i>".repeat(100), 512));
    }

    #[test]
    fn deep_nesting_fails_with_the_limit_instead_of_overflowing() {
        let deep = format!("{}x{}", "<div>".repeat(100_000), "</div>".repeat(100_000));
        assert_eq!(parse(&deep), Err(ParseError::TooDeep { limit: 256 }));
        // Within the limit it converts, on a test thread's ordinary stack.
        let fine = format!("{}deep text{}", "<div>".repeat(200), "</div>".repeat(200));
        let doc = parse(&fine).expect("200 levels are fine");
        assert_eq!(doc.blocks[0].text, "deep text");
    }

    const PAGE: &str = r#"<!DOCTYPE html>
<html>
<head>
  <title>Tom &amp; Jerry's  Guide</title>
  <style>body { color: red; } .secret-style {}</style>
  <script>var secretScript = "do not index";</script>
</head>
<body>
  <nav><a href="/">Home</a> <a href="/about">About us nav</a></nav>
  <div class="navheader"><table><tr><th>Previous Chapter Title</th></tr></table></div>
  <ul role="navigation"><li>Menu entry</li></ul>
  <div id="breadcrumbs">Docs &gt; Crumb</div>
  <h1>Welcome</h1>
  <p>First <b>bold</b> paragraph with a <a href="https://example.com">link</a>.</p>
  <script type="text/javascript">document.write("inline secret");</script>
  <h2>Details</h2>
  <ul><li>one</li><li>two</li></ul>
  <pre><code class="language-rust">fn main() {}
</code></pre>
  <table>
    <thead><tr><th>Name</th><th>Age</th></tr></thead>
    <tbody><tr><td>Ann</td><td>31</td></tr></tbody>
  </table>
  <noscript>Enable JavaScript please</noscript>
</body>
</html>"#;

    #[test]
    fn structure_survives_and_scripts_do_not_leak() {
        let doc = parse(PAGE).expect("page parses");
        assert_eq!(doc.title.as_deref(), Some("Tom & Jerry's Guide"));
        let all: String = doc
            .blocks
            .iter()
            .map(|b| b.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        for leaked in [
            "secret",
            "color: red",
            "document.write",
            "About us nav",
            "Enable JavaScript",
            "Previous Chapter Title",
            "Menu entry",
            "Crumb",
        ] {
            assert!(!all.contains(leaked), "{leaked:?} leaked into {all:?}");
        }
        let heading = doc
            .blocks
            .iter()
            .find(|b| b.kind == BlockKind::Heading(1))
            .expect("h1 block");
        assert_eq!(heading.text, "Welcome");
        let paragraph = doc
            .blocks
            .iter()
            .find(|b| b.kind == BlockKind::Paragraph)
            .expect("paragraph block");
        assert_eq!(paragraph.text, "First bold paragraph with a link.");
        assert_eq!(paragraph.headings[..], ["Welcome"]);
        let items: Vec<_> = doc
            .blocks
            .iter()
            .filter(|b| b.kind == BlockKind::ListItem)
            .map(|b| (b.text.as_str(), b.headings.join(" > ")))
            .collect();
        assert_eq!(
            items,
            vec![
                ("- one", "Welcome > Details".to_string()),
                ("- two", "Welcome > Details".to_string())
            ]
        );
        assert!(doc
            .blocks
            .iter()
            .any(|b| b.kind == BlockKind::Code && b.text.contains("fn main() {}")));
        let table = doc
            .blocks
            .iter()
            .find(|b| b.kind == BlockKind::Table)
            .expect("table block");
        assert_eq!(table.text, "Name | Age\nAnn | 31");
    }

    #[test]
    fn only_whole_navigation_names_mark_chrome() {
        // The Read the Docs theme wraps the whole article in `wy-nav-content`.
        let doc = parse(
            r#"<div class="wy-grid-for-nav"><nav class="wy-nav-side">Side menu</nav>
               <section class="wy-nav-content-wrap"><div class="wy-nav-content">
               <div class="canvas-note"><p>Kept: canvas is not nav.</p></div>
               <div id="menu"><p>Dropped menu.</p></div>
               <div class="sidebar left"><p>Dropped sidebar.</p></div>
               <section class="content main has-sidebar"><p>Kept content.</p></section>
               </div></section></div>"#,
        )
        .expect("parses");
        let all: Vec<&str> = doc.blocks.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(all, vec!["Kept: canvas is not nav.", "Kept content."]);
    }

    #[test]
    fn first_h1_is_the_title_without_a_title_element() {
        let doc = parse("<body><h1>Plain &lt;Heading&gt;</h1><p>x</p></body>").expect("parses");
        assert_eq!(doc.title.as_deref(), Some("Plain <Heading>"));
    }
}
