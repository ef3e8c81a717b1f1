//! The SQL text the counter reads: where a simple query's statements end, and which statement
//! begins a transaction.

/// Whether `sql` starts a transaction (after any leading comments).
pub fn begins_transaction(sql: &str) -> bool {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    let words: Vec<String> = s
        .split_whitespace()
        .take(2)
        .map(|w| w.trim_end_matches(';').to_ascii_uppercase())
        .collect();
    match words.first().map(String::as_str) {
        Some("BEGIN") => true,
        Some("START") => words.get(1).map(String::as_str) == Some("TRANSACTION"),
        _ => false,
    }
}

/// The statements of a simple query: split at semicolons outside quotes, quoted identifiers,
/// dollar quotes and comments; parts that hold only comments or blanks are no statement.
pub fn split_statements(sql: &str) -> Vec<String> {
    let b = sql.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut i, mut code) = (0, 0, false);
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"--") {
            i += rest.iter().position(|c| *c == b'\n').unwrap_or(rest.len());
        } else if rest.starts_with(b"/*") {
            // Block comments nest in PostgreSQL.
            let (mut depth, mut j) = (0usize, 0);
            while j < rest.len() {
                if rest[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            i += j;
        } else if rest[0] == b'\'' || rest[0] == b'"' {
            // '' (or "") inside is the quote itself: scanning on from it re-enters the quote.
            let escapes = rest[0] == b'\'' && i > 0 && b[i - 1].eq_ignore_ascii_case(&b'e');
            let mut j = 1;
            while j < rest.len() && rest[j] != rest[0] {
                j += if escapes && rest[j] == b'\\' { 2 } else { 1 };
            }
            i += j + 1;
            code = true;
        } else if let Some(tag) = dollar_tag(rest) {
            let body = &rest[tag.len()..];
            let end = body
                .windows(tag.len())
                .position(|w| w == tag)
                .map_or(body.len(), |p| p + tag.len());
            i += tag.len() + end;
            code = true;
        } else if rest[0] == b';' {
            if code {
                parts.push(sql[start..i].trim().to_string());
            }
            i += 1;
            start = i;
            code = false;
        } else {
            code |= !rest[0].is_ascii_whitespace();
            i += 1;
        }
    }
    if code {
        parts.push(sql[start..].trim().to_string());
    }
    parts
}

/// `$tag$` (or `$$`) at the start of `s`: a dollar quote's opening.
fn dollar_tag(s: &[u8]) -> Option<&[u8]> {
    if s.first() != Some(&b'$') {
        return None;
    }
    let len = s[1..]
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))?;
    (s.get(1 + len) == Some(&b'$') && !s.get(1).is_some_and(u8::is_ascii_digit))
        .then(|| &s[..len + 2])
}

#[cfg(test)]
mod tests {
    use super::{begins_transaction, split_statements};

    #[test]
    fn a_simple_query_counts_each_of_its_statements() {
        assert_eq!(split_statements("BEGIN"), ["BEGIN"]);
        assert_eq!(split_statements("  COMMIT;  "), ["COMMIT"]);
        assert!(split_statements("/* SQLx ping */").is_empty());
        assert!(split_statements(" ; -- nothing;\n").is_empty());
        assert_eq!(
            split_statements(
                "BEGIN; SELECT set_config('a', 'x;y', true); SELECT \"odd;name\" FROM t; \
                 /* a; /* nested; */ comment */ SELECT $q$;$q$, $$;$$, E'\\';', $1 -- trailing;"
            )
            .len(),
            4
        );
        assert_eq!(
            split_statements("SELECT 'it''s; fine'"),
            ["SELECT 'it''s; fine'"]
        );
    }

    #[test]
    fn transactions_are_recognised_by_their_first_words() {
        assert!(begins_transaction("BEGIN"));
        assert!(begins_transaction("begin isolation level serializable"));
        assert!(begins_transaction(
            "/* c */ -- c\n START TRANSACTION READ ONLY"
        ));
        assert!(!begins_transaction("START_TRANSACTION"));
        assert!(!begins_transaction("SELECT 'BEGIN'"));
        assert!(!begins_transaction("COMMIT"));
    }
}
