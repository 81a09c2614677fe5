//! When a failed delivery is tried again: the configured waits (by default
//! the Standard Webhooks suggestion: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
//! 10 h), each stretched by up to 20 % of random jitter so that events that
//! failed together are not all retried in the same instant.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

/// Up to this share of a wait is added at random.
const JITTER: f64 = 0.2;

#[derive(Debug, Clone)]
pub struct RetrySchedule {
    waits: Vec<Duration>,
}

impl RetrySchedule {
    pub fn from_secs(waits: &[f64]) -> Self {
        Self {
            waits: waits
                .iter()
                .map(|s| Duration::milliseconds((s * 1000.0).round() as i64))
                .collect(),
        }
    }

    /// Attempts in all: the first, and one after each wait.
    pub fn attempts(&self) -> u32 {
        self.waits.len() as u32 + 1
    }

    /// When the attempt after `attempts_made` failed ones is due, from
    /// `now`; `None` once the schedule is used up.
    pub fn next_attempt(&self, attempts_made: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let wait = *self.waits.get(attempts_made.checked_sub(1)? as usize)?;
        let extra = wait.num_milliseconds() as f64 * rand::rng().random_range(0.0..JITTER);
        Some(now + wait + Duration::milliseconds(extra as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_wait_follows_its_attempt_with_at_most_a_fifth_more() {
        let s = RetrySchedule::from_secs(&[5.0, 300.0]);
        assert_eq!(s.attempts(), 3);
        let now = Utc::now();
        for _ in 0..100 {
            let first = s.next_attempt(1, now).unwrap() - now;
            assert!(first >= Duration::seconds(5) && first < Duration::seconds(6));
            let second = s.next_attempt(2, now).unwrap() - now;
            assert!(second >= Duration::seconds(300) && second < Duration::seconds(360));
        }
        assert_eq!(
            s.next_attempt(3, now),
            None,
            "exhausted after the last wait"
        );
    }
}
