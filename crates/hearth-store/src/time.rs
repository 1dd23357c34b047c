use chrono::{DateTime, TimeZone, Utc};

/// A point in time, stored as Unix milliseconds so both backends compare it the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    /// From Unix milliseconds.
    pub fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Unix milliseconds.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// This time plus a number of seconds (saturating).
    pub fn plus_secs(self, secs: u64) -> Self {
        let add = i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000);
        Self(self.0.saturating_add(add))
    }

    /// As a chrono time, for display.
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}
