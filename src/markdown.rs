//! Markdown written by users (item descriptions) rendered for a page: parsed by pulldown-cmark
//! with any raw HTML in it turned into text, then cleaned by ammonia with a short list of allowed
//! tags and attributes (no images, no SVG, no styles, links only to http, https and mailto, each
//! marked `rel="noopener noreferrer nofollow"`). Both steps, not one: the parser decides what the
//! text means, the sanitiser guarantees what can reach the browser whatever the parser did.

use std::collections::HashSet;
use std::sync::LazyLock;

use pulldown_cmark::{html, Event, Options, Parser};

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::empty();
    b.add_tags([
        "p",
        "br",
        "hr",
        "em",
        "strong",
        "del",
        "code",
        "pre",
        "blockquote",
        "ul",
        "ol",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "a",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    ])
    .add_tag_attributes("a", ["href"])
    .add_tag_attributes("ol", ["start"])
    .url_schemes(HashSet::from(["http", "https", "mailto"]))
    // No relative links either (`//evil.example`, or a link to one of this site's own actions).
    .url_relative(ammonia::UrlRelative::Deny)
    .link_rel(Some("noopener noreferrer nofollow"))
    .strip_comments(true);
    b
});

/// `md` as safe HTML.
pub fn to_html(md: &str) -> String {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    let events = Parser::new_ext(md, opts).map(|e| match e {
        // Raw HTML in the source is shown as the text it is.
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        other => other,
    });
    let mut raw = String::with_capacity(md.len() * 2);
    html::push_html(&mut raw, events);
    CLEANER.clean(&raw).to_string()
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn markdown_becomes_html() {
        let h = to_html(
            "# Plan\n\n* **one**\n* [two](https://example.com)\n\n| a | b |\n|---|---|\n| 1 | 2 |",
        );
        assert!(h.contains("<h1>Plan</h1>"), "{h}");
        assert!(h.contains("<strong>one</strong>"), "{h}");
        assert!(
            h.contains(
                r#"<a href="https://example.com" rel="noopener noreferrer nofollow">two</a>"#
            ),
            "{h}"
        );
        assert!(h.contains("<td>2</td>"), "{h}");
    }

    #[test]
    fn nothing_that_runs_or_loads_survives() {
        for evil in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "[click](javascript:alert(1))",
            "[click](JaVaScRiPt:alert(1))",
            "<a href=\"javascript:alert(1)\">x</a>",
            "![pixel](https://tracker.example/p.gif)",
            "<svg><set attributeName=\"href\" to=\"javascript:alert(1)\"/></svg>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<div style=\"position:fixed\">x</div>",
            "[x](data:text/html;base64,PHNjcmlwdD4=)",
            "[x](//evil.example/)",
            "[x](/notifications/read)",
        ] {
            let h = to_html(evil);
            // Every tag is one of the allowed, with no attribute but a safe href.
            for tag in h.split('<').skip(1) {
                let tag = tag.split('>').next().unwrap_or("");
                let name: String = tag
                    .trim_start_matches('/')
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                assert!(
                    ["p", "a", "em", "strong", "code", "pre"].contains(&name.as_str()),
                    "{evil} -> {h}"
                );
                let attrs = tag
                    .trim_start_matches('/')
                    .trim_start_matches(name.as_str())
                    .trim();
                if !attrs.is_empty() {
                    let rel = "rel=\"noopener noreferrer nofollow\"";
                    assert!(
                        attrs == rel || (attrs.starts_with("href=\"http") && attrs.ends_with(rel)),
                        "{evil} -> {h}"
                    );
                }
            }
        }
    }
}
