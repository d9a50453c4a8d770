//! Token buckets: for `cps`, and for log lines that clients can trigger.

use std::time::Instant;

/// Allows `rate` events per second on average, with bursts of up to `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: u32, burst: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Lets a limited number of log lines through and counts the rest, so that a client
/// cannot fill the disk with refusals; the count is reported when lines flow again.
#[derive(Debug, Clone)]
pub struct LogLimiter {
    bucket: TokenBucket,
    suppressed: u64,
}

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Write it; `suppressed` lines were dropped since the last one written.
    Write {
        suppressed: u64,
    },
    Drop,
}

impl LogLimiter {
    /// At most 20 lines a second once a burst of 100 is spent.
    pub fn new(now: Instant) -> LogLimiter {
        LogLimiter {
            bucket: TokenBucket::new(20, 100, now),
            suppressed: 0,
        }
    }

    /// The lines dropped since the last one written, counted from zero again: for
    /// reporting them when no further line will come (at exit).
    pub fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        if self.bucket.try_take(now) {
            let suppressed = std::mem::take(&mut self.suppressed);
            Verdict::Write { suppressed }
        } else {
            self.suppressed += 1;
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 3, start);
        assert!(bucket.try_take(start));
        assert!(bucket.try_take(start));
        assert!(bucket.try_take(start));
        assert!(!bucket.try_take(start));
        assert!(bucket.try_take(start + Duration::from_millis(100)));
        assert!(!bucket.try_take(start + Duration::from_millis(100)));
    }

    #[test]
    fn limiter_counts_dropped_lines_and_reports_them_once() {
        let start = Instant::now();
        let mut limiter = LogLimiter::new(start);
        for _ in 0..100 {
            assert_eq!(limiter.check(start), Verdict::Write { suppressed: 0 });
        }
        assert_eq!(limiter.check(start), Verdict::Drop);
        assert_eq!(limiter.check(start), Verdict::Drop);
        let later = start + Duration::from_secs(1);
        assert_eq!(limiter.check(later), Verdict::Write { suppressed: 2 });
        assert_eq!(limiter.check(later), Verdict::Write { suppressed: 0 });
    }

    #[test]
    fn dropped_lines_can_be_taken_for_a_last_report() {
        let start = Instant::now();
        let mut limiter = LogLimiter::new(start);
        for _ in 0..103 {
            limiter.check(start);
        }
        assert_eq!(limiter.take_suppressed(), 3);
        assert_eq!(limiter.take_suppressed(), 0);
        let later = start + Duration::from_secs(1);
        assert_eq!(limiter.check(later), Verdict::Write { suppressed: 0 });
    }
}
