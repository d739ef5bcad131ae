//! The mock's deterministic replies.
//!
//! The reply is a pure function of (model, conversation, max_tokens, stop sequences)
//! and the server's configured reply length: tests compare byte for byte. A final
//! assistant message (prefill) is continued where the server would continue it
//! (Anthropic; a Chat Completions request with a continuation flag: see
//! [`MockRequest::continues_prefill`]), so that prefill + continuation equals the
//! uninterrupted reply exactly; elsewhere it is a finished turn and the reply
//! starts again from the beginning.

use super::request::MockRequest;
use super::tools::{calls_for, pieces, value_for, MockCall};
use super::words::WORDS;
use crate::content::Part;
use crate::model::{Message, Role};
use crate::tools::ResponseFormat;

/// How a mock reply ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The reply ended naturally.
    Stop,
    /// `max_tokens` cut it.
    Length,
    /// A stop sequence cut it.
    StopSequence,
    /// It ends with tool calls.
    ToolUse,
}

/// A reply split into the chunks it is streamed as: each holds one to three
/// tokens (see [`token_pieces`]), at sizes drawn from the conversation, as real
/// servers batch them (Anthropic's deltas usually hold several, gateways batch).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The text, chunk by chunk.
    pub chunks: Vec<String>,
    /// Tokens of the text, as the mock counts them ([`token_pieces`]).
    pub tokens: u64,
    /// Tokens of each chunk.
    pub chunk_tokens: Vec<u32>,
    /// How it ended.
    pub finish: Finish,
    /// The stop sequence that ended it, if one did.
    pub stop_sequence: Option<String>,
    /// Tokens counted for the prompt.
    pub prompt_tokens: u64,
    /// The tool calls after the text, in order.
    pub calls: Vec<MockCall>,
    /// What the calls' ids derive from (the conversation before any continuation).
    pub call_seed: u64,
    /// The reasoning before the text, when the request asked for it.
    pub thinking: Option<super::thinking::Thinking>,
}

impl Reply {
    /// The whole text.
    pub fn text(&self) -> String {
        self.chunks.concat()
    }
}

/// A message as the mock sees it: role and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text (an assistant's tool calls and a tool's results as text too).
    pub content: String,
    /// Images it holds.
    pub images: usize,
}

impl Turn {
    /// A turn.
    pub fn new(role: &str, content: &str) -> Self {
        Turn {
            role: role.to_string(),
            content: content.to_string(),
            images: 0,
        }
    }

    /// A message of steer's model as a turn.
    pub fn of(m: &Message) -> Self {
        let mut content = String::new();
        let mut images = 0;
        for p in &m.content {
            match p {
                Part::Text(t) => content.push_str(t),
                Part::Image(_) => images += 1,
                Part::ToolCall(c) => {
                    content.push_str(&format!("\n[call {} {}]", c.name, c.arguments_text()))
                }
                Part::ToolResult(r) => content.push_str(&r.content),
                Part::Reasoning(_) => {}
            }
        }
        Turn {
            role: m.role.as_str().to_string(),
            content,
            images,
        }
    }
}

/// FNV-1a: a stable hash, so that replies stay the same across runs and platforms.
fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn seed_of(model: &str, turns: &[Turn]) -> u64 {
    let mut h = fnv1a(0xcbf2_9ce4_8422_2325, model.as_bytes());
    for t in turns {
        h = fnv1a(h, t.role.as_bytes());
        h = fnv1a(h, &[0]);
        h = fnv1a(h, t.content.as_bytes());
        h = fnv1a(h, &[0]);
    }
    h
}

/// The uninterrupted reply to `turns`, before `max_tokens` and stop sequences.
/// `words` fixes its length; otherwise 12 to 48 words, chosen by the conversation.
pub fn full_chunks(model: &str, turns: &[Turn], words: Option<usize>) -> Vec<String> {
    let seed = seed_of(model, turns);
    let count = words.unwrap_or(12 + (seed % 37) as usize).max(1);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut chunks = Vec::with_capacity(count);
    let mut sentence_len = 0usize;
    let mut sentence_target = rng.usize(5..12);
    for i in 0..count {
        let word = WORDS[rng.usize(..WORDS.len())];
        let mut chunk = String::with_capacity(word.len() + 3);
        if sentence_len == 0 {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                chunk.extend(first.to_uppercase());
                chunk.push_str(chars.as_str());
            }
        } else {
            chunk.push_str(word);
        }
        sentence_len += 1;
        let last = i + 1 == count;
        if last || sentence_len == sentence_target {
            chunk.push('.');
            sentence_len = 0;
            sentence_target = rng.usize(5..12);
            if !last {
                chunk.push_str(if rng.u8(..3) == 0 { "\n\n" } else { " " });
            }
        } else {
            if rng.u8(..10) == 0 {
                chunk.push(',');
            }
            chunk.push(' ');
        }
        chunks.push(chunk);
    }
    chunks
}

/// Splits the rest of `chunks` after the first `prefix_len` bytes of their text.
fn chunks_after(chunks: &[String], prefix_len: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0usize;
    for chunk in chunks {
        let end = start + chunk.len();
        if end > prefix_len {
            let from = prefix_len.saturating_sub(start);
            out.push(chunk[from..].to_string());
        }
        start = end;
    }
    out
}

/// Where a model that was asked to continue starts again: like a real model, it
/// repeats the last word or two (at least 8 bytes) of what it had written.
fn restart_point(partial: &str) -> usize {
    let limit = partial.len().saturating_sub(8);
    partial
        .char_indices()
        .filter(|(i, _)| *i <= limit)
        .filter(|(i, _)| *i == 0 || partial[..*i].ends_with(char::is_whitespace))
        .map(|(i, _)| i)
        .next_back()
        .unwrap_or(0)
}

/// The mock's tokens of `text` for a model whose tokenizer is not public
/// (Anthropic's, xAI's): each word is cut into pieces of up to four
/// characters, and whitespace rides with the piece before it (the first piece
/// takes any whitespace the text starts with): a token smaller than a word, as
/// real ones are.
///
/// ```
/// use steer_llm::mock::text::tokens_of;
/// assert_eq!(tokens_of("Lantern river. "), vec!["Lant", "ern ", "rive", "r. "]);
/// assert_eq!(tokens_of(" ivory").concat(), " ivory");
/// ```
pub fn tokens_of(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut letters = 0usize;
    for c in text.chars() {
        if c.is_whitespace() {
            current.push(c);
            continue;
        }
        let after_space = current.ends_with(char::is_whitespace) && letters > 0;
        if after_space || letters == 4 {
            out.push(std::mem::take(&mut current));
            letters = 0;
        }
        current.push(c);
        letters += 1;
    }
    if !current.is_empty() {
        match out.last_mut() {
            Some(last) if letters == 0 => last.push_str(&current),
            _ => out.push(current),
        }
    }
    out
}

/// `text` cut into `model`'s tokens as its provider counts them, each piece
/// with the tokens it holds: OpenAI's models by their public tokenizer
/// ([`crate::tokens::pieces`]), others (whose tokenizers are not public) by
/// [`tokens_of`], a token a piece.
pub fn token_pieces(model: &str, text: &str) -> Vec<(String, u32)> {
    if !crate::tokens::has_tokenizer(model) {
        return tokens_of(text).into_iter().map(|t| (t, 1)).collect();
    }
    // A reply is a pure function of its conversation, and a benchmark asks
    // the same one again and again: the tokenizer's work is kept for the
    // latest replies (bounded), so that the mock stays faster than its clients.
    type Memo = std::collections::HashMap<(String, String), Vec<(String, u32)>>;
    static MEMO: std::sync::OnceLock<parking_lot::Mutex<Memo>> = std::sync::OnceLock::new();
    const KEPT: usize = 256;
    let memo = MEMO.get_or_init(Default::default);
    let key = (model.to_string(), text.to_string());
    if let Some(pieces) = memo.lock().get(&key) {
        return pieces.clone();
    }
    let pieces = crate::tokens::pieces(model, text)
        .unwrap_or_else(|| tokens_of(text).into_iter().map(|t| (t, 1)).collect());
    let mut kept = memo.lock();
    if kept.len() >= KEPT {
        kept.clear();
    }
    kept.insert(key, pieces.clone());
    pieces
}

/// Tokens of `text` as `model`'s provider (the mock) counts them.
///
/// ```
/// use steer_llm::mock::text::count_tokens;
/// assert_eq!(count_tokens("gpt-4o-mini", "hello world"), 2);
/// assert_eq!(count_tokens("claude-3-5-haiku-latest", "hello world"), 4); // hell, o , worl, d
/// ```
pub fn count_tokens(model: &str, text: &str) -> u64 {
    token_pieces(model, text)
        .iter()
        .map(|(_, n)| u64::from(*n))
        .sum()
}

/// Groups token pieces into stream chunks of one to three pieces, at sizes
/// drawn from `seed`: each chunk's text and its tokens.
fn chunked(pieces: Vec<(String, u32)>, seed: u64) -> (Vec<String>, Vec<u32>) {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x9e37_79b9_7f4a_7c15);
    let (mut chunks, mut counts) = (Vec::with_capacity(pieces.len()), Vec::new());
    let mut pieces = pieces.into_iter().peekable();
    while pieces.peek().is_some() {
        let size = rng.usize(1..=3);
        let (mut text, mut tokens) = (String::new(), 0u32);
        for (piece, n) in pieces.by_ref().take(size) {
            text.push_str(&piece);
            tokens = tokens.saturating_add(n);
        }
        chunks.push(text);
        counts.push(tokens);
    }
    (chunks, counts)
}

/// Tokens counted for a prompt: words plus four per message, 85 per image.
pub fn prompt_tokens(turns: &[Turn]) -> u64 {
    turns
        .iter()
        .map(|t| t.content.split_whitespace().count() as u64 + 4 + 85 * t.images as u64)
        .sum()
}

/// The reply to a request as the mock read it: text, tool calls, structured
/// output, continued where the conversation ends in a prefill or a continue
/// message (see [`super::tools`] for the tool rules).
pub fn respond(req: &MockRequest, words: Option<usize>) -> Reply {
    let turns: Vec<Turn> = req.messages.iter().map(Turn::of).collect();
    let ask = Ask {
        tools: req,
        parallel: req.parallel_tool_calls.unwrap_or(true),
    };
    let ends_in_assistant = turns.last().is_some_and(|t| t.role == "assistant");
    let turns = if ends_in_assistant && !req.continues_prefill {
        // A finished turn, answered afresh: the reply to the conversation
        // before it, from its start (OpenAI documents no continuation; llmock
        // and a model at temperature 0 answer so).
        &turns[..turns.len() - 1]
    } else {
        &turns[..]
    };
    compose(
        &req.model,
        turns,
        req.max_tokens,
        &req.stop,
        words,
        Some(ask),
    )
}

/// What a request asks beyond text.
#[derive(Clone, Copy)]
struct Ask<'a> {
    tools: &'a MockRequest,
    parallel: bool,
}

/// How the conversation asks to be continued, if it does.
enum Continued<'a> {
    No,
    Prefill(&'a str),
    Quote(crate::continue_message::Quoted),
}

/// The reply to a conversation, as the mock sends it.
///
/// ```
/// use steer_llm::mock::text::{reply, Turn};
/// let turns = vec![Turn::new("user", "hello")];
/// let whole = reply("gpt-4o-mini", &turns, None, &[], None).text();
/// // Cut anywhere, the continuation of the prefill completes the same text.
/// let cut = whole.char_indices().nth(7).unwrap().0;
/// let mut resumed = turns.clone();
/// resumed.push(Turn::new("assistant", &whole[..cut]));
/// let rest = reply("gpt-4o-mini", &resumed, None, &[], None).text();
/// assert_eq!(format!("{}{}", &whole[..cut], rest), whole);
/// ```
pub fn reply(
    model: &str,
    turns: &[Turn],
    max_tokens: Option<u32>,
    stop: &[String],
    words: Option<usize>,
) -> Reply {
    compose(model, turns, max_tokens, stop, words, None)
}

/// The whole reply to `base` (the conversation before any continuation): its text
/// chunks and its calls.
fn whole(
    model: &str,
    base: &[Turn],
    words: Option<usize>,
    ask: Option<Ask<'_>>,
) -> (Vec<String>, Vec<MockCall>, u64) {
    let seed = seed_of(model, base);
    let Some(ask) = ask else {
        return (full_chunks(model, base, words), Vec::new(), seed);
    };
    let req = ask.tools;
    let last_user = base
        .iter()
        .rev()
        .find(|t| t.role == "user")
        .map(|t| t.content.as_str())
        .unwrap_or("");
    let answering = base.last().is_some_and(|t| t.role == Role::Tool.as_str());
    let calls = calls_for(
        &req.tools,
        req.tool_choice.as_ref(),
        ask.parallel,
        last_user,
        answering,
        seed,
    );
    let mut rng = fastrand::Rng::with_seed(seed);
    let text = match &req.response_format {
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            pieces(&value_for(schema, &mut rng, 0).to_string(), 7)
        }
        Some(ResponseFormat::Json) => {
            let answer = full_chunks(model, base, words).concat();
            pieces(&serde_json::json!({ "answer": answer }).to_string(), 7)
        }
        // A short preamble before the calls, as models write.
        None if !calls.is_empty() => full_chunks(model, base, Some(4)),
        None => full_chunks(model, base, words),
    };
    (text, calls, seed)
}

/// The calls of a fresh reply to a continuation the mock does not recognise as
/// its own (another model's text): those asked for, less the tools the quote
/// says were called (by name: a model told it called a tool does not call it
/// again).
fn calls_not_made(calls: &[MockCall], made: &[(String, serde_json::Value)]) -> Vec<MockCall> {
    calls
        .iter()
        .filter(|c| !made.iter().any(|(name, _)| *name == c.name))
        .cloned()
        .collect()
}

fn compose(
    model: &str,
    turns: &[Turn],
    max_tokens: Option<u32>,
    stop: &[String],
    words: Option<usize>,
    ask: Option<Ask<'_>>,
) -> Reply {
    let prompt_tokens = prompt_tokens(turns);
    let (continued, base) = match turns.split_last() {
        Some((last, earlier)) if last.role == "user" => {
            match crate::continue_message::read_quoted(&last.content) {
                Some(q) => (Continued::Quote(q), earlier),
                None => (Continued::No, turns),
            }
        }
        Some((last, earlier)) if last.role == "assistant" => {
            (Continued::Prefill(last.content.as_str()), earlier)
        }
        _ => (Continued::No, turns),
    };
    let (full, all_calls, call_seed) = whole(model, base, words, ask);
    let text: String = full.concat();
    let fresh = |calls: &[MockCall], made: &[(String, serde_json::Value)]| {
        (
            full_chunks(model, turns, words),
            calls_not_made(calls, made),
        )
    };
    let (mut chunks, mut calls) = match continued {
        Continued::No => (full, all_calls),
        Continued::Prefill(prefix) if text.starts_with(prefix) => {
            (chunks_after(&full, prefix.len()), all_calls)
        }
        Continued::Quote(q) if text.starts_with(q.text.as_str()) => {
            let made = q.calls.len();
            let same = all_calls.len() >= made
                && all_calls
                    .iter()
                    .zip(&q.calls)
                    .all(|(c, (name, args))| &c.name == name && &c.arguments == args);
            match (same, made) {
                // A model asked to continue repeats the end of what it wrote.
                (true, 0) => (chunks_after(&full, restart_point(&q.text)), all_calls),
                // The text was whole before the calls began: the calls not yet made.
                (true, _) => (Vec::new(), all_calls.into_iter().skip(made).collect()),
                (false, _) => fresh(&all_calls, &q.calls),
            }
        }
        Continued::Quote(q) => fresh(&all_calls, &q.calls),
        Continued::Prefill(_) => fresh(&all_calls, &[]),
    };
    let mut finish = if calls.is_empty() {
        Finish::Stop
    } else {
        Finish::ToolUse
    };
    let mut stop_sequence = None;
    let text: String = chunks.concat();
    // A server checks its stop sequences as it generates: one that would end
    // past the token limit never completes, and the limit ends the reply.
    let generated = match max_tokens {
        Some(max) => {
            let mut kept = 0u64;
            token_pieces(model, &text)
                .iter()
                .take_while(|(_, n)| {
                    kept = kept.saturating_add(u64::from(*n));
                    kept <= u64::from(max)
                })
                .map(|(piece, _)| piece.len())
                .sum()
        }
        None => text.len(),
    };
    let first_stop = stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()).map(|at| (at, s)))
        .filter(|(at, s)| at.saturating_add(s.len()) <= generated)
        .min_by_key(|(at, _)| *at);
    if let Some((at, seq)) = first_stop {
        let mut kept = Vec::new();
        let mut start = 0usize;
        for chunk in chunks {
            if start >= at {
                break;
            }
            let end = start + chunk.len();
            kept.push(if end > at {
                chunk[..at - start].to_string()
            } else {
                chunk
            });
            start = end;
        }
        chunks = kept;
        finish = Finish::StopSequence;
        stop_sequence = Some(seq.clone());
        calls.clear();
    }
    let mut pieces = token_pieces(model, &chunks.concat());
    let mut token_count: u64 = pieces.iter().map(|(_, n)| u64::from(*n)).sum();
    if let Some(max) = max_tokens {
        if token_count > u64::from(max) {
            // Cut at the limit: the pieces whose tokens fit.
            let mut kept = 0u64;
            let fit = pieces
                .iter()
                .take_while(|(_, n)| {
                    kept = kept.saturating_add(u64::from(*n));
                    kept <= u64::from(max)
                })
                .count();
            pieces.truncate(fit);
            token_count = pieces.iter().map(|(_, n)| u64::from(*n)).sum();
            finish = Finish::Length;
            stop_sequence = None;
            calls.clear();
        }
    }
    let (chunks, chunk_tokens) = chunked(pieces, seed_of(model, turns));
    Reply {
        chunks,
        tokens: token_count,
        chunk_tokens,
        finish,
        stop_sequence,
        prompt_tokens,
        calls,
        call_seed,
        thinking: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convo() -> Vec<Turn> {
        vec![
            Turn::new("system", "be brief"),
            Turn::new("user", "tell me"),
        ]
    }

    #[test]
    fn replies_are_deterministic_and_depend_on_model_and_conversation() {
        let a = reply("m", &convo(), None, &[], None);
        assert_eq!(a, reply("m", &convo(), None, &[], None));
        assert_ne!(a.text(), reply("n", &convo(), None, &[], None).text());
        let mut other = convo();
        other[1].content.push('!');
        assert_ne!(a.text(), reply("m", &other, None, &[], None).text());
    }

    #[test]
    fn every_cut_point_continues_exactly() {
        let whole = reply("m", &convo(), None, &[], Some(40)).text();
        for (cut, _) in whole.char_indices() {
            let mut turns = convo();
            turns.push(Turn::new("assistant", &whole[..cut]));
            let rest = reply("m", &turns, None, &[], Some(40)).text();
            assert_eq!(format!("{}{}", &whole[..cut], rest), whole, "cut at {cut}");
        }
    }

    #[test]
    fn a_trimmed_prefill_continues_with_the_whitespace() {
        let whole = reply("m", &convo(), None, &[], Some(30)).text();
        let cut = whole.find(' ').unwrap() + 1; // prefix ends in a space
        let prefill = whole[..cut].trim_end();
        let mut turns = convo();
        turns.push(Turn::new("assistant", prefill));
        let rest = reply("m", &turns, None, &[], Some(30)).text();
        assert!(rest.starts_with(' '));
        assert_eq!(format!("{prefill}{rest}"), whole);
    }

    #[test]
    fn max_tokens_cuts_tokens_not_chunks_and_says_length() {
        let whole = reply("m", &convo(), None, &[], Some(20));
        let r = reply("m", &convo(), Some(3), &[], Some(20));
        assert_eq!(r.tokens, 3);
        assert_eq!(r.text(), tokens_of(&whole.text())[..3].concat());
        assert_eq!(r.finish, Finish::Length);
        assert!(
            whole.chunks.len() < whole.tokens as usize,
            "chunks hold several tokens"
        );
    }

    #[test]
    fn tokens_cover_the_text_and_hold_at_most_four_letters() {
        let text = reply("m", &convo(), None, &[], Some(60)).text();
        let tokens = tokens_of(&text);
        assert_eq!(tokens.concat(), text);
        for t in &tokens {
            assert!(
                t.trim().chars().count() <= 4 && !t.trim().is_empty(),
                "{t:?}"
            );
        }
        assert_eq!(tokens_of("  \n").concat(), "  \n");
    }

    #[test]
    fn stop_sequences_cut_before_the_sequence() {
        let whole = reply("m", &convo(), None, &[], Some(20)).text();
        let seq = whole.split(' ').nth(3).unwrap().to_string();
        let r = reply("m", &convo(), None, std::slice::from_ref(&seq), Some(20));
        assert_eq!(r.finish, Finish::StopSequence);
        assert_eq!(r.text(), whole[..whole.find(&seq).unwrap()]);
    }

    #[test]
    fn a_stop_sequence_that_would_end_past_the_limit_never_completes() {
        let whole = reply("m", &convo(), None, &[], Some(20)).text();
        let words: Vec<&str> = whole.split(' ').collect();
        // The fourth word is the stop; a limit that ends inside it lets the
        // limit end the reply, as a server generating token by token does.
        let seq = format!(" {}", words[3]);
        let before = whole.find(&seq).unwrap();
        let limit = |max| {
            reply(
                "m",
                &convo(),
                Some(max),
                std::slice::from_ref(&seq),
                Some(20),
            )
        };
        let fits = count_tokens("m", &whole[..before + seq.len()]);
        let r = limit(u32::try_from(fits).unwrap());
        assert_eq!(
            (r.finish, r.text()),
            (Finish::StopSequence, whole[..before].to_string())
        );
        let r = limit(u32::try_from(fits - 1).unwrap());
        assert_eq!(r.finish, Finish::Length);
        assert!(r.text().len() > before, "{:?}", r.text());
    }

    #[test]
    fn a_fresh_reply_makes_the_calls_asked_for_less_those_a_quote_says_were_made() {
        let call = |ordinal, name: &str| MockCall {
            ordinal,
            name: name.into(),
            arguments: serde_json::json!({}),
            pieces: Vec::new(),
        };
        let asked = [call(0, "get_weather"), call(1, "get_time")];
        let names = |calls: Vec<MockCall>| calls.into_iter().map(|c| c.name).collect::<Vec<_>>();
        assert_eq!(
            names(calls_not_made(&asked, &[])),
            ["get_weather", "get_time"]
        );
        // Made with other arguments (another model's): not made again.
        let made = [("get_weather".to_string(), serde_json::json!({"city": "x"}))];
        assert_eq!(names(calls_not_made(&asked, &made)), ["get_time"]);
    }

    #[test]
    fn the_word_count_is_configurable() {
        assert_eq!(full_chunks("m", &convo(), Some(1000)).len(), 1000);
        let n = full_chunks("m", &convo(), None).len();
        assert!((12..=48).contains(&n));
    }
}
