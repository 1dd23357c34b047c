//! HTML: converted to Markdown by `htmd` (scripts, styles and navigation skipped), then read as
//! Markdown so headings, lists, code and tables keep their structure. Navigation is `<nav>`, and
//! also the blocks sites mark as navigation by role, class or id (`role="navigation"`,
//! `class="navheader"`, `id="breadcrumbs"`…): page chrome repeated on every page would otherwise
//! make each page match its neighbours' titles.

use super::{markdown, squash_whitespace, ParseError, ParsedDocument};

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

pub(super) fn parse(html: &str) -> Result<ParsedDocument, ParseError> {
    let converter = htmd::HtmlToMarkdown::builder()
        .skip_tags(SKIPPED_TAGS.to_vec())
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
    let markdown = converter
        .convert(html)
        .map_err(|e| ParseError::Corrupt(format!("the HTML could not be read: {e}")))?;
    let mut document = markdown::parse(&markdown);
    if let Some(title) = title_element(html) {
        document.title = Some(title);
    }
    Ok(document)
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
        assert_eq!(paragraph.headings, vec!["Welcome".to_string()]);
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
