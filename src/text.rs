//! Checks on text people read: names and titles must show what they contain. One place decides
//! which characters are invisible, control or direction-changing, for every field that uses it.

use crate::error::{AppError, AppResult};

/// Characters that are invisible or change how the text around them is shown: control characters
/// (Cc), format characters (Cf: zero-width spaces and joiners, the byte order mark, bidirectional
/// embeddings, overrides and isolates, invisible operators, tags, ...), the line and paragraph
/// separators, and the Hangul fillers that render as blanks.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{08E2}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180E}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{3164}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{E0001}'
        )
        || ('\u{0600}'..='\u{0605}').contains(&c)
        || ('\u{0890}'..='\u{0891}').contains(&c)
        || ('\u{180B}'..='\u{180F}').contains(&c)
        || ('\u{200B}'..='\u{200F}').contains(&c)
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2060}'..='\u{206F}').contains(&c)
        || ('\u{FFF9}'..='\u{FFFB}').contains(&c)
        || ('\u{13430}'..='\u{1343F}').contains(&c)
        || ('\u{1BCA0}'..='\u{1BCA3}').contains(&c)
        || ('\u{1D173}'..='\u{1D17A}').contains(&c)
        || ('\u{E0020}'..='\u{E007F}').contains(&c)
}

fn refuse(field: &str, c: char) -> AppError {
    AppError::invalid(
        "invalid_characters",
        format!(
            "{field}: invisible, control or direction-changing characters are not allowed (found U+{:04X}).",
            u32::from(c)
        ),
    )
}

/// A one-line name or title (display name, org, workspace and status names, item titles), as
/// sent (before trimming, so a hidden character at either end is refused rather than quietly
/// dropped): no hidden character at all (see [`is_hidden`]) inside ASCII spaces at either end.
/// 422 `invalid_characters` naming the field.
pub fn check_name(field: &str, value: &str) -> AppResult<()> {
    match value
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .chars()
        .find(|c| is_hidden(*c))
    {
        Some(c) => Err(refuse(field, c)),
        None => Ok(()),
    }
}

/// Free text (descriptions, comments): line breaks and tabs are fine, other control characters
/// (NUL above all) are not. 422 `invalid_characters` naming the field.
pub fn check_free_text(field: &str, value: &str) -> AppResult<()> {
    match value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        Some(c) => Err(refuse(field, c)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_named_and_ordinary_text_passes() {
        for ok in [
            "Alice",
            "Zoë Ångström",
            "李小龙",
            "O'Brien-Smith",
            "Deal #4 (Q3)",
        ] {
            assert!(check_name("name", ok).is_ok(), "{ok}");
        }
        for bad in [
            "a\u{200B}b",
            "a\u{200D}b",
            "a\u{2060}b",
            "\u{FEFF}a",
            "a\u{202E}b",
            "a\u{2066}b",
            "a\u{2028}b",
            "a\u{0000}b",
            "a\u{00AD}b",
            "a\u{E0041}b",
            "a\nb",
        ] {
            let e = check_name("display_name", bad).expect_err(bad);
            assert!(format!("{e:?}").contains("invalid_characters"));
        }
        assert!(check_free_text("body", "line one\r\nline two\tend").is_ok());
        assert!(check_free_text("body", "nul\u{0000}here").is_err());
    }
}
