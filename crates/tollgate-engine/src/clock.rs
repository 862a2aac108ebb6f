//! Where the engine's time comes from. Decisions record it; the core never
//! reads a clock.

/// Where the engine's time comes from.
#[derive(Clone, Debug)]
pub enum Clock {
    /// The system clock.
    System,
    /// A fixed time, in milliseconds since the Unix epoch (replays, tests).
    Fixed(i64),
}

impl Clock {
    /// The time now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Clock::Fixed(ms) => *ms,
        }
    }
}
