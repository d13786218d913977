//! The console's markup helpers: escaping, the page frame every page shares (navigation,
//! skip link, the embedded stylesheet), the error page, and the legend swatches.
//!
//! Every text that comes from the database or the request goes through [`esc`]: a reason
//! or a server id from a peer's backup is data, never markup.

use std::fmt::Write as _;

/// The console's one stylesheet, embedded in every page (no second request, nothing to
/// fail to load).
pub const STYLESHEET: &str = include_str!("console.css");

/// `s` with `& < > " '` escaped, for text and attribute values alike.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Which page a frame is for: its navigation entry is marked current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Coverage,
    Report,
    /// An error page: no entry is current.
    None,
}

/// A whole page: `title` (escaped here), the server id in the header, and `body` (markup,
/// already escaped by its maker).
pub fn page(title: &str, server_id: &str, nav: Nav, body: &str) -> String {
    let item = |n: Nav, href: &str, label: &str| {
        let cur = if n == nav {
            " aria-current=\"page\""
        } else {
            ""
        };
        format!("<li><a href=\"{href}\"{cur}>{label}</a></li>")
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t} · cms {s}</title>\n<link rel=\"icon\" href=\"data:,\">\n\
         <style>\n{STYLESHEET}</style>\n</head>\n<body>\n\
         <a class=\"skip\" href=\"#main\">Skip to the content</a>\n\
         <header><p class=\"brand\">cms <span class=\"server\">{s}</span></p>\n\
         <nav aria-label=\"Console pages\"><ul>{}{}{}</ul></nav></header>\n\
         <main id=\"main\">\n<h1>{t}</h1>\n{body}</main>\n\
         <footer><p>Read-only console of <code>cms collect</code>; see docs/console.md.</p>\
         </footer>\n</body>\n</html>\n",
        item(Nav::Overview, "/", "Overview"),
        item(Nav::Coverage, "/coverage", "Coverage"),
        item(Nav::Report, "/report", "Interval report"),
        t = esc(title),
        s = esc(server_id),
    )
}

/// The page of a request the console refuses (400) or cannot answer (500): says why.
pub fn error_page(server_id: &str, status: u16, why: &str) -> String {
    let title = if status == 400 {
        "Bad request"
    } else {
        "Cannot read the database"
    };
    page(
        title,
        server_id,
        Nav::None,
        &format!(
            "<p class=\"error\" role=\"alert\"><strong>{status}:</strong> {}</p>\n\
             <p><a href=\"/\">Back to the overview</a></p>\n",
            esc(why)
        ),
    )
}

/// `<select>` of the configured ACDs with `acd` selected, labelled for the form.
pub fn acd_select(acds: &[u16], acd: u16) -> String {
    let mut o = String::from("<label for=\"acd\">ACD</label> <select id=\"acd\" name=\"acd\">");
    for a in acds {
        let sel = if *a == acd { " selected" } else { "" };
        let _ = write!(o, "<option value=\"{a}\"{sel}>{a}</option>");
    }
    o + "</select>"
}

/// A legend entry: the swatch of class `class` and its words.
pub fn legend_item(class: &str, words: &str) -> String {
    format!("<li><span class=\"swatch {class}\" aria-hidden=\"true\"></span> {words}</li>")
}

/// `n` with thousands separated by a thin space, for readable totals.
pub fn num(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            o.push('\u{202f}');
        }
        o.push(c);
    }
    if n < 0 {
        format!("-{o}")
    } else {
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_database_is_never_markup() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let p = error_page("srv-<a>", 400, "acd \"<b>\" is bad");
        assert!(p.contains("srv-&lt;a&gt;"));
        assert!(p.contains("acd &quot;&lt;b&gt;&quot; is bad"));
        assert!(!p.contains("<b>"));
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(num(0), "0");
        assert_eq!(num(999), "999");
        assert_eq!(num(1000), "1\u{202f}000");
        assert_eq!(num(-1234567), "-1\u{202f}234\u{202f}567");
    }
}
