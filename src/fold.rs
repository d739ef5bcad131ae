//! Making text fit on one line of an error message or log.

/// Folds runs of whitespace (newlines included) into single spaces, trimming both
/// ends; text that is already folded is copied as is.
pub(crate) fn fold_whitespace(text: &str) -> String {
    if is_folded(text) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Whether `text` is already ASCII with single inner spaces and no other whitespace.
pub(crate) fn is_folded(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut previous_space = true; // rejects a leading space
    for &b in bytes {
        let space = b == b' ';
        if b >= 0x80 || (b.is_ascii_whitespace() && !space) || (space && previous_space) {
            return false;
        }
        previous_space = space;
    }
    !previous_space || bytes.is_empty()
}

/// The first `n` characters of `text`, with `…` when something was cut.
pub(crate) fn truncate_chars(text: &str, n: usize) -> String {
    match text.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_keeps_clean_text_and_folds_the_rest() {
        for (input, expected) in [
            ("Overloaded", "Overloaded"),
            ("a b c", "a b c"),
            (" a  b\n\tc ", "a b c"),
            ("café\u{2003}bar", "café bar"),
            ("", ""),
            (" ", ""),
        ] {
            assert_eq!(fold_whitespace(input), expected, "{input:?}");
        }
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate_chars("日本語", 2), "日本…");
        assert_eq!(truncate_chars("abc", 3), "abc");
    }
}
