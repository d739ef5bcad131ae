//! One request of the workload: what is asked, what came back, and whether
//! the text is the fault-free one, character for character.

use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::mock::text::{self, Turn};
use crate::model::{ChatRequest, FinishReason, ModelId, StreamEvent};
use crate::runtime::Client;

/// Topics the prompts vary over (each conversation gets its own reply).
const TOPICS: [&str; 8] = [
    "rivers", "lanterns", "glaciers", "harbours", "orchards", "comets", "bridges", "forests",
];

/// The `index`-th request of a run seeded `seed`: its conversation, token
/// limit (one in four has one) and whether it streams.
pub(super) fn request(
    target: &ModelId,
    index: u64,
    seed: u64,
    stream_share: f64,
) -> (ChatRequest, bool) {
    let mut rng = fastrand::Rng::with_seed(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let topic = TOPICS[rng.usize(..TOPICS.len())];
    let mut req = ChatRequest::for_model(target.clone())
        .system("You are terse.")
        .user(format!("Question {index}: tell me about {topic}."));
    if rng.u8(..4) == 0 {
        req = req.max_tokens(rng.u32(8..40));
    }
    let stream = rng.f64() < stream_share;
    (req, stream)
}

/// What became of one request.
#[derive(Debug, Clone)]
pub(super) struct Outcome {
    /// When it started, from the run's start.
    pub started: Duration,
    /// How long it took.
    pub latency: Duration,
    /// Whether it streamed.
    pub stream: bool,
    /// `ok`, or the error's kind (a category, `breaker_rejected`, ...).
    pub result: Result<(), &'static str>,
    /// Attempts it made (hedge legs included).
    pub attempts: u32,
    /// Mid-stream resumptions.
    pub resumptions: u32,
    /// Failovers to another target (mid-stream, or a request's route).
    pub failovers: u32,
    /// Restarts the stream declared (its text started again).
    pub restarts: u32,
    /// Whether the first target answered it (all of it).
    pub served_first: bool,
    /// Characters missing from the fault-free text (0 when exact).
    pub lost: u64,
    /// Characters more than the fault-free text, or differing (0 when exact).
    pub repeated: u64,
    /// Whether a seam joined two different models' text (checked up to it).
    pub cross_model: bool,
    /// Whether a continued reply stopped at `max_tokens` before the
    /// fault-free text's end (a prefix of it: a continuation's budget counts
    /// the delivered tokens on the high side where the model's tokenizer is
    /// not public, so that it never goes past the limit).
    pub short_at_limit: bool,
    /// Tokens in and out, all attempts.
    pub tokens: u64,
    /// Tokens of attempts that bought nothing of the reply.
    pub wasted_tokens: u64,
    /// What it cost (all attempts), in dollars; wasted beside it.
    pub cost_usd: f64,
    /// Cost of attempts that bought nothing of the reply.
    pub wasted_usd: f64,
}

/// The mock's fault-free reply to `req` from `model`.
pub(super) fn fault_free(req: &ChatRequest, model: &str) -> String {
    let turns: Vec<Turn> = req
        .messages
        .iter()
        .map(|m| Turn::new(m.role.as_str(), &m.text()))
        .collect();
    text::reply(model, &turns, req.max_tokens, &req.stop, None).text()
}

/// Characters lost and repeated (or different) of `got` against `want`.
pub(super) fn compare(got: &str, want: &str) -> (u64, u64) {
    if got == want {
        return (0, 0);
    }
    let common = got
        .chars()
        .zip(want.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let count = |s: &str| s.chars().count().saturating_sub(common) as u64;
    (count(want), count(got))
}

/// Sets what `got` lost or repeated against `want`: nothing, for a
/// continued reply that stopped at its `max_tokens` on a prefix of it.
fn judge(
    out: &mut Outcome,
    req: &ChatRequest,
    got: &str,
    want: &str,
    finish: FinishReason,
    continued: bool,
) {
    let at_limit = finish == FinishReason::Length && req.max_tokens.is_some();
    if continued && at_limit && got.len() < want.len() && want.starts_with(got) {
        out.short_at_limit = true;
        return;
    }
    let (lost, repeated) = compare(got, want);
    out.lost = lost;
    out.repeated = repeated;
}

/// The model of a target `deployment/model` (or a bare model).
fn model_of(target: &str) -> &str {
    target.split_once('/').map_or(target, |(_, m)| m)
}

/// Runs `req` through `client` and observes it; `first` is the provider
/// (deployment) of the first target; `check` compares the reply with the
/// mock's fault-free text (a live drill has none).
pub(super) async fn run(
    client: &Client,
    req: ChatRequest,
    stream: bool,
    first: &str,
    check: bool,
    t0: Instant,
) -> Outcome {
    let started = t0.elapsed();
    let begun = Instant::now();
    let mut out = Outcome {
        started,
        latency: Duration::ZERO,
        stream,
        result: Ok(()),
        attempts: 1,
        resumptions: 0,
        failovers: 0,
        restarts: 0,
        served_first: true,
        lost: 0,
        repeated: 0,
        cross_model: false,
        short_at_limit: false,
        tokens: 0,
        wasted_tokens: 0,
        cost_usd: 0.0,
        wasted_usd: 0.0,
    };
    let spend = if stream {
        run_stream(client, &req, first, check, &mut out).await
    } else {
        run_once(client, &req, first, check, &mut out).await
    };
    if let Some(spend) = spend {
        out.attempts = spend.count.max(1);
        let usage = spend.usage();
        out.tokens = usage.input_tokens().saturating_add(usage.completion_tokens);
        out.wasted_tokens = spend.wasted_tokens();
        out.cost_usd = spend.total().dollars();
        out.wasted_usd = spend.wasted().dollars();
    }
    out.latency = begun.elapsed();
    out
}

async fn run_once(
    client: &Client,
    req: &ChatRequest,
    first: &str,
    check: bool,
    out: &mut Outcome,
) -> Option<crate::model::Spend> {
    match client.generate(req.clone()).await {
        Ok(resp) => {
            out.failovers = resp
                .route
                .iter()
                .filter(|s| s.outcome != "answered" && s.outcome != "hedge_lost")
                .count() as u32;
            out.served_first = resp.provider == first;
            let model = resp
                .route
                .last()
                .map_or(resp.model.as_str(), |s| model_of(&s.target));
            let continued = resp.spend.count > 1;
            if check {
                let want = fault_free(req, model);
                judge(out, req, &resp.text, &want, resp.finish_reason, continued);
            }
            Some(resp.spend)
        }
        Err(e) => failed(out, &e),
    }
}

/// Notes the request's failure; what it spent.
fn failed(out: &mut Outcome, e: &crate::Error) -> Option<crate::model::Spend> {
    out.result = Err(e.kind());
    out.served_first = false;
    e.spend().cloned()
}

async fn run_stream(
    client: &Client,
    req: &ChatRequest,
    first: &str,
    check: bool,
    out: &mut Outcome,
) -> Option<crate::model::Spend> {
    let mut events = match client.stream(req.clone()).await {
        Ok(s) => s,
        Err(e) => return failed(out, &e),
    };
    let mut text = String::new();
    // The model of each stretch of text: (where it starts, model).
    let mut stretches: Vec<(usize, String)> = Vec::new();
    let mut first_model = None;
    let mut finish = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(StreamEvent::Start {
                model, provider, ..
            }) => {
                out.served_first = provider == first;
                first_model.get_or_insert_with(|| model.clone());
                if stretches.is_empty() {
                    stretches.push((0, model));
                }
            }
            Ok(StreamEvent::TextDelta { text: t, .. }) => text.push_str(&t),
            Ok(StreamEvent::Resumed { .. }) => out.resumptions += 1,
            Ok(StreamEvent::Complete { finish_reason, .. }) => finish = Some(finish_reason),
            Ok(StreamEvent::FailedOver { offset, target, .. }) => {
                out.failovers += 1;
                out.served_first = false;
                stretches.push((offset, model_of(&target).to_string()));
            }
            Ok(StreamEvent::Restarted { .. }) => {
                out.restarts += 1;
                text.clear();
                let last = stretches.last().map(|(_, m)| m.clone());
                stretches.clear();
                stretches.extend(last.map(|m| (0, m)));
            }
            Ok(_) => {}
            Err(e) => return failed(out, &e).or_else(|| Some(events.spend())),
        }
    }
    let model = stretches
        .first()
        .map(|(_, m)| m.clone())
        .or(first_model)
        .unwrap_or_else(|| req.model.model().to_string());
    let one_model = stretches.iter().all(|(_, m)| *m == model);
    let continued = out.resumptions + out.failovers + out.restarts > 0;
    if !check {
        return Some(events.spend());
    }
    if one_model {
        let finish = finish.unwrap_or(FinishReason::Stop);
        judge(out, req, &text, &fault_free(req, &model), finish, continued);
    } else {
        // Another model's continuation: exact up to the first seam.
        out.cross_model = true;
        let seam = stretches
            .iter()
            .find(|(_, m)| *m != model)
            .map_or(0, |(at, _)| *at);
        let got: String = text.chars().take(seam).collect();
        let want: String = fault_free(req, &model).chars().take(seam).collect();
        let (lost, repeated) = compare(&got, &want);
        out.lost = lost;
        out.repeated = repeated;
    }
    Some(events.spend())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_counts_what_is_missing_and_what_is_extra_after_the_common_prefix() {
        assert_eq!(compare("abc", "abc"), (0, 0));
        assert_eq!(compare("ab", "abc"), (1, 0));
        assert_eq!(compare("abcc", "abc"), (0, 1));
        assert_eq!(compare("abXd", "abcd"), (2, 2));
    }

    #[test]
    fn requests_are_the_same_for_a_seed_and_vary_with_the_index() {
        let target: ModelId = "group/main".parse().unwrap();
        let (a, sa) = request(&target, 3, 9, 0.5);
        let (b, sb) = request(&target, 3, 9, 0.5);
        assert_eq!(
            (a.messages.len(), a.max_tokens, sa),
            (b.messages.len(), b.max_tokens, sb)
        );
        assert_eq!(a.messages[1].text(), b.messages[1].text());
        let (c, _) = request(&target, 4, 9, 0.5);
        assert_ne!(a.messages[1].text(), c.messages[1].text());
        assert!(!request(&target, 5, 9, 0.0).1, "a share of 0 never streams");
        assert!(request(&target, 5, 9, 1.0).1, "a share of 1 always streams");
    }
}
