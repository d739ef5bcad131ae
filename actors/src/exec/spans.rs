//! Whether any subscriber can want an `INFO` span, asked before one is made.
//!
//! With no subscriber (or none that takes `INFO`), a span made by `info_span!`
//! is disabled but still carries its metadata, and with tracing's `log` feature
//! (on wherever actix-web is) its clones, entries and drop each ask `log` whether
//! to write a line: measured at about 2% of a request's cycles (callgrind,
//! BENCHMARKS.md). `Span::none()` costs nothing to hold; steer makes its spans
//! only when [`info_wanted`]. What is given up: the span lifecycle lines tracing
//! writes to `log` when no tracing subscriber is installed.
//!
//! ```
//! // No subscriber in this doctest's process: no span is wanted.
//! assert!(!steer_actors::exec::spans::info_wanted());
//! ```

use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};

/// Whether an `INFO` span may be enabled: the build keeps `INFO` and a
/// subscriber (global or this thread's) may take it.
pub fn info_wanted() -> bool {
    STATIC_MAX_LEVEL >= LevelFilter::INFO && LevelFilter::current() >= LevelFilter::INFO
}

/// `span`, or `Span::none()` if no subscriber enabled it: what steer holds of a
/// span, so that a disabled one costs nothing to clone, enter, record or drop.
pub fn kept(span: tracing::Span) -> tracing::Span {
    if span.is_disabled() {
        tracing::Span::none()
    } else {
        span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Only the positive case here: the level is the highest any thread's
    // subscriber takes, so another test's subscriber could turn a negative one
    // true. The doctest above, a process of its own, has the negative case.
    #[test]
    fn a_disabled_span_is_kept_as_none_and_an_enabled_one_as_itself() {
        let _default = tracing::subscriber::set_default(tracing_subscriber_stub(LevelFilter::INFO));
        assert!(kept(tracing::debug_span!("below the level")).is_none());
        let span = kept(tracing::info_span!("taken"));
        assert!(!span.is_none() && !span.is_disabled());
    }

    #[test]
    fn wanted_with_a_subscriber_that_takes_info() {
        let _default = tracing::subscriber::set_default(tracing_subscriber_stub(LevelFilter::INFO));
        assert!(info_wanted());
    }

    /// A subscriber that takes everything up to `max`.
    fn tracing_subscriber_stub(max: LevelFilter) -> impl tracing::Subscriber {
        struct Upto(LevelFilter);
        impl tracing::Subscriber for Upto {
            fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
                *m.level() <= self.0
            }
            fn max_level_hint(&self) -> Option<LevelFilter> {
                Some(self.0)
            }
            fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                tracing::span::Id::from_u64(1)
            }
            fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
            fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
            fn event(&self, _: &tracing::Event<'_>) {}
            fn enter(&self, _: &tracing::span::Id) {}
            fn exit(&self, _: &tracing::span::Id) {}
        }
        Upto(max)
    }
}
