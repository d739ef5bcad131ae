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

/// Whether `text` is already printable ASCII with single inner spaces: folding
/// would return it unchanged. (A `false` only costs a copy: [`fold_whitespace`]
/// gives the same text.) Written to run at a byte per cycle or better, since every
/// classified error's message goes through it.
pub(crate) fn is_folded(text: &str) -> bool {
    let bytes = text.as_bytes();
    // 0x20 (space) to 0x7e (`~`), with no early exit so that the loop vectorises.
    let printable = bytes
        .iter()
        .fold(true, |ok, &b| ok & (b.wrapping_sub(0x20) < 0x5f));
    printable && !text.starts_with(' ') && !text.ends_with(' ') && !text.contains("  ")
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
    fn only_text_that_folding_leaves_alone_counts_as_folded() {
        for folded in ["Overloaded", "a b c", "", "rate limit: 60/min (try again)"] {
            assert!(is_folded(folded), "{folded:?}");
            assert_eq!(fold_whitespace(folded), folded);
        }
        for not in [" a", "a ", "a  b", "a\tb", "a\nb", "café", "\u{7f}"] {
            assert!(!is_folded(not), "{not:?}");
        }
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate_chars("日本語", 2), "日本…");
        assert_eq!(truncate_chars("abc", 3), "abc");
    }
}
