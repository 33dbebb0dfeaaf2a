//! How many keys a pipeline of MIGRATEs carries so that it holds the source for about the pause
//! budget (`--max-pause`): a MIGRATE blocks the source until the target has restored its keys,
//! and the source's other clients wait that long. Pure: the caller times each pipeline, this
//! learns from it.

use std::time::Duration;

/// What a MIGRATE is assumed to move per microsecond before the first one is timed (on
/// loopback a MIGRATE of small keys moves 100 to 300 bytes a microsecond).
const FIRST_GUESS_BYTES_PER_US: u64 = 100;
/// The most keys one pipeline carries, however fast the calls are.
const MAX_KEYS: usize = 20_000;

#[derive(Clone, Debug)]
pub struct Pacer {
    budget: Duration,
    keys: usize,
    /// Seconds a key costs, smoothed over the pipelines timed so far.
    per_key: Option<f64>,
}

impl Pacer {
    /// A first guess from the keys' average size.
    pub fn new(budget: Duration, avg_key_bytes: u64) -> Self {
        let guess = budget.as_micros() as u64 * FIRST_GUESS_BYTES_PER_US / avg_key_bytes.max(1);
        Self { budget, keys: (guess as usize).clamp(1, MAX_KEYS), per_key: None }
    }

    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Keys the next pipeline should carry.
    pub fn keys(&self) -> usize {
        self.keys
    }

    /// A pipeline of `keys` keys took `took`; whether its keys took more than twice the budget
    /// each (a key moves in one MIGRATE and cannot be cut smaller: the caller says so).
    pub fn observe(&mut self, keys: usize, took: Duration) -> bool {
        if keys == 0 {
            return false;
        }
        let cost = took.as_secs_f64() / keys as f64;
        // Halfway between the old estimate and the new one: one slow call (a bigger key, a busy
        // moment) moves it, but does not swing it.
        let per_key = self.per_key.map_or(cost, |p| f64::midpoint(p, cost));
        self.per_key = Some(per_key);
        self.keys = ((self.budget.as_secs_f64() / per_key) as usize).clamp(1, MAX_KEYS);
        cost > (self.budget * 2).as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_from_the_key_size_and_learns_the_real_cost() {
        let mut p = Pacer::new(Duration::from_millis(1), 100);
        assert_eq!(p.keys(), 1000, "1 ms at 100 bytes a microsecond, 100-byte keys");
        // The server turns out to take 2 µs a key: 500 keys fill the budget.
        p.observe(1000, Duration::from_millis(2));
        assert_eq!(p.keys(), 500);
        // Then faster (1 µs a key): the estimate moves halfway.
        p.observe(500, Duration::from_micros(500));
        assert_eq!(p.keys(), 666);
    }

    #[test]
    fn a_lone_key_over_the_budget_is_named_and_keys_stay_at_least_one() {
        let mut p = Pacer::new(Duration::from_millis(1), 1 << 20);
        assert_eq!(p.keys(), 1, "a 1 MiB key goes alone");
        assert!(p.observe(1, Duration::from_millis(9)), "9 ms for one key is over the budget");
        assert_eq!(p.keys(), 1);
        assert!(!p.observe(1, Duration::from_micros(900)));
        assert!(!p.observe(1000, Duration::from_millis(9)), "many small keys in 9 ms: each is cheap");
    }

    #[test]
    fn a_zero_pipeline_teaches_nothing() {
        let mut p = Pacer::new(Duration::from_millis(1), 100);
        assert!(!p.observe(0, Duration::from_millis(5)));
        assert_eq!(p.keys(), 1000);
    }
}
