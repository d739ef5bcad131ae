//! A floor on a stream's rate of content after its first token (the stream's
//! reader measures it: `stream/rate.rs`).

use std::time::Duration;

/// The least content a stream must deliver after its first token: at least
/// `chars_per_sec` characters a second, measured over each `window`. Off
/// unless set ([`GenerateOptions::min_rate`](crate::GenerateOptions::min_rate),
/// [`ClientBuilder::stream_min_rate`](crate::ClientBuilder::stream_min_rate),
/// [`Group::min_rate`](crate::Group::min_rate)).
///
/// ```
/// use std::time::Duration;
/// use steer_llm::runtime::RateFloor;
/// let floor = RateFloor::new(20, Duration::from_secs(2));
/// assert_eq!(floor.least_in_window(), 40);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RateFloor {
    /// Characters a second, at least.
    pub chars_per_sec: u32,
    /// The window each measure covers (at least 10 ms).
    pub window: Duration,
}

impl RateFloor {
    /// A floor of `chars_per_sec` over `window`.
    pub fn new(chars_per_sec: u32, window: Duration) -> Self {
        RateFloor {
            chars_per_sec,
            window: window.max(Duration::from_millis(10)),
        }
    }

    /// Characters one window must hold, rounded up (saturating).
    pub fn least_in_window(&self) -> u64 {
        let per_ms = u128::from(self.chars_per_sec) * self.window.as_millis();
        u64::try_from(per_ms.div_ceil(1000)).unwrap_or(u64::MAX)
    }
}
