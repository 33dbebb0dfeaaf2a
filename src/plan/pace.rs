//! How many keys a pipeline of MIGRATEs carries so that it holds the source for at most the pause
//! budget (`--max-pause`): a MIGRATE blocks the source until the target has restored its keys,
//! and the source's other clients wait that long. Pure: the caller times each pipeline, this
//! learns from it.
//!
//! The budget is a ceiling: a pipeline is sized to hold the source for half of it, as the next
//! slot's keys may cost more than the last's. Sized to all of it, the probe of the benchmark
//! waited 3.2 ms at the 99th percentile against redis-cli's 2.1 ms, for no gain in time.
//!
//! A call costs a fixed part (the round trip to the target, which must wake up and answer) and
//! a part per key. Taking all of it as per key makes a pacer shrink its calls without end where
//! the fixed part is near the budget: each smaller call costs nearly as much, looks dearer per
//! key, and is cut again. Measured on a loaded 2-core host: 6 keys a call, 216 µs each, 39,079
//! calls for 250k keys. A real network's round trip does the same. So both parts are fitted.

use std::time::Duration;

/// What a MIGRATE is assumed to move per microsecond before the first one is timed (on
/// loopback a MIGRATE of small keys moves 100 to 300 bytes a microsecond).
const FIRST_GUESS_BYTES_PER_US: u64 = 100;
/// The most keys one pipeline carries, however fast the calls are.
const MAX_KEYS: usize = 20_000;
/// How much of the fit each older pipeline keeps: about the last five count.
const DECAY: f64 = 0.8;
/// The weight of the first guess of the cost per key, relative to what the pipelines taught:
/// it decides only where their key counts are too alike to tell the two parts apart.
const PRIOR: f64 = 1e-3;

#[derive(Clone, Debug)]
pub struct Pacer {
    budget: Duration,
    keys: usize,
    /// The first guess of seconds per key, from the keys' size.
    guess_per_key: f64,
    /// Decayed sums of the fit `took = per_call × calls + per_key × keys`.
    fit: Fit,
}

/// Decayed sums of the normal equations of a two-parameter least-squares fit.
#[derive(Clone, Debug, Default)]
struct Fit {
    cc: f64,
    ck: f64,
    kk: f64,
    ct: f64,
    kt: f64,
}

/// The fitted cost: seconds a MIGRATE call costs whatever it carries, and seconds per key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cost {
    pub per_call: f64,
    pub per_key: f64,
}

impl Pacer {
    /// A first guess from the keys' average size.
    pub fn new(budget: Duration, avg_key_bytes: u64) -> Self {
        let guess_per_key = avg_key_bytes.max(1) as f64 / FIRST_GUESS_BYTES_PER_US as f64 / 1e6;
        let keys = ((budget.as_secs_f64() / 2.0 / guess_per_key) as usize).clamp(1, MAX_KEYS);
        Self { budget, keys, guess_per_key, fit: Fit::default() }
    }

    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Keys the next pipeline should carry.
    pub fn keys(&self) -> usize {
        self.keys
    }

    /// The cost learned so far.
    pub fn cost(&self) -> Cost {
        let f = &self.fit;
        // Ridge toward the first guess per key, scaled to the data so that it only breaks ties.
        let lambda = PRIOR * f.kk.max(f64::MIN_POSITIVE);
        let (kk, kt) = (f.kk + lambda, f.kt + lambda * self.guess_per_key);
        let det = f.cc * kk - f.ck * f.ck;
        if f.cc <= 0.0 || det <= 0.0 {
            return Cost { per_call: 0.0, per_key: self.guess_per_key };
        }
        let per_call = (f.ct * kk - kt * f.ck) / det;
        let per_key = (kt * f.cc - f.ct * f.ck) / det;
        if per_call < 0.0 || per_key <= 0.0 {
            // The first guess was too dear: the keys explain it all.
            return Cost { per_call: 0.0, per_key: (f.kt / f.kk.max(f64::MIN_POSITIVE)).max(1e-9) };
        }
        Cost { per_call, per_key }
    }

    /// A pipeline of `calls` MIGRATEs and `keys` keys held the source for `took`; whether its
    /// keys took more than twice the budget each (a key moves in one MIGRATE and cannot be cut
    /// smaller: the caller says so).
    pub fn observe(&mut self, calls: usize, keys: usize, took: Duration) -> bool {
        if keys == 0 || calls == 0 {
            return false;
        }
        let (c, k, t) = (calls as f64, keys as f64, took.as_secs_f64());
        let f = &mut self.fit;
        for s in [&mut f.cc, &mut f.ck, &mut f.kk, &mut f.ct, &mut f.kt] {
            *s *= DECAY;
        }
        f.cc += c * c;
        f.ck += c * k;
        f.kk += k * k;
        f.ct += c * t;
        f.kt += k * t;
        let cost = self.cost();
        let budget = self.budget.as_secs_f64();
        let fixed = cost.per_call * c;
        // Where the calls' fixed part eats most of the aim, cutting keys cannot meet it and only
        // multiplies the calls: the keys get as much time as the fixed part, so a pipeline holds
        // the source for at most twice the least it can.
        let for_keys = (budget / 2.0 - fixed).max(fixed);
        self.keys = ((for_keys / cost.per_key) as usize).clamp(1, MAX_KEYS);
        t / k > 2.0 * budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// `rounds` pipelines of two calls costing `per_call_us` each and 1 µs a key, carrying what
    /// the pacer asks or less, as the last keys of a slot do.
    fn two_calls_a_pipeline(p: &mut Pacer, rounds: u64, per_call_us: u64) {
        for i in 0..rounds {
            let keys = p.keys() - (i % 4) as usize * p.keys() / 5;
            p.observe(2, keys, us(2 * per_call_us + keys as u64));
        }
    }

    #[test]
    fn starts_from_the_key_size_and_learns_the_real_cost() {
        let mut p = Pacer::new(Duration::from_millis(1), 100);
        assert_eq!(p.keys(), 500, "half of 1 ms at 100 bytes a microsecond, 100-byte keys");
        // The server turns out to take 2 µs a key and nothing per call: 250 keys fill the aim.
        for keys in [500, 300, 200, 250, 225] {
            p.observe(2, keys, us(2 * keys as u64));
        }
        let keys = p.keys();
        assert!((240..=260).contains(&keys), "{keys} keys");
    }

    #[test]
    fn a_fixed_cost_per_call_does_not_shrink_the_calls_to_nothing() {
        // Each call costs 100 µs whatever it carries, and 1 µs a key: two calls leave 300 µs of
        // the 500 aimed at for 300 keys. A pacer taking it all as per key ended at a handful.
        // The first guess (300-byte keys: 3 µs) is wrong; the pipelines' ends of slots vary.
        let mut p = Pacer::new(Duration::from_millis(1), 300);
        two_calls_a_pipeline(&mut p, 30, 100);
        let keys = p.keys();
        assert!((270..=330).contains(&keys), "{keys} keys, {:?}", p.cost());
        let cost = p.cost();
        assert!((cost.per_call - 100e-6).abs() < 10e-6, "{cost:?}");
    }

    #[test]
    fn a_fixed_cost_over_the_budget_gives_the_keys_as_long() {
        // 700 µs a call (a far target): two calls alone take 1.4 ms. The keys get as long again.
        let mut p = Pacer::new(Duration::from_millis(1), 200);
        two_calls_a_pipeline(&mut p, 40, 700);
        let keys = p.keys();
        assert!((1300..=1500).contains(&keys), "{keys} keys, {:?}", p.cost());
    }

    #[test]
    fn a_lone_key_over_the_budget_is_named_and_keys_stay_at_least_one() {
        let mut p = Pacer::new(Duration::from_millis(1), 1 << 20);
        assert_eq!(p.keys(), 1, "a 1 MiB key goes alone");
        assert!(p.observe(1, 1, Duration::from_millis(9)), "9 ms for one key is over the budget");
        assert_eq!(p.keys(), 1);
        assert!(!p.observe(1, 1, us(900)));
        assert!(!p.observe(2, 1000, Duration::from_millis(9)), "many small keys in 9 ms: each is cheap");
    }

    #[test]
    fn a_zero_pipeline_teaches_nothing() {
        let mut p = Pacer::new(Duration::from_millis(1), 100);
        assert!(!p.observe(1, 0, Duration::from_millis(5)));
        assert!(!p.observe(0, 10, Duration::from_millis(5)));
        assert_eq!(p.keys(), 500);
    }
}
