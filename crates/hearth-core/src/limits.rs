//! Sign-in throttling: attempts per client IP, and lockout of an account *from one client*
//! after repeated failures there. Failures are counted per (account, client), so a stranger who
//! knows an email can lock it out only from their own address, never from the owner's. (Guessing
//! from many addresses at once is slowed by the per-IP rate, not stopped by a lockout: locking
//! the account for everyone would hand every stranger a denial of service.)
//!
//! Behind [`LoginLimiter`] so a shared (Redis) implementation can replace the in-memory one
//! when several instances serve the same users.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Limits on sign-in attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginLimits {
    /// Sign-in and registration attempts allowed per client IP per minute.
    pub per_ip_per_minute: u32,
    /// Consecutive failed sign-ins from one client after which the account is locked for that
    /// client.
    pub max_failures: u32,
    /// How long a lock lasts, in seconds.
    pub lockout_secs: u64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_ip_per_minute: 30,
            max_failures: 5,
            lockout_secs: 900,
        }
    }
}

/// Why an attempt is refused, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Seconds until a new attempt may succeed.
    pub retry_after_secs: u64,
}

/// Decides whether a sign-in attempt may proceed and remembers its outcome.
pub trait LoginLimiter: Send + Sync {
    /// Counts an attempt from `ip` on `account` and says whether it may proceed.
    fn attempt(&self, ip: IpAddr, account: &str) -> Result<(), Refused>;
    /// Records a failed attempt on `account` from `ip`.
    fn failed(&self, ip: IpAddr, account: &str);
    /// Clears the failures of `account` from `ip` after a successful sign-in there.
    fn succeeded(&self, ip: IpAddr, account: &str);
}

/// Failures are counted per account and client.
type FailureKey = (String, IpAddr);

#[derive(Default)]
struct Counters {
    ip_windows: HashMap<IpAddr, (Instant, u32)>,
    failures: HashMap<FailureKey, Failures>,
}

struct Failures {
    count: u32,
    last: Instant,
    locked_at: Option<Instant>,
}

/// IPv6 clients usually hold a whole /64, so that is the unit counted.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
    }
}

/// A [`LoginLimiter`] in this process's memory.
pub struct MemoryLoginLimiter {
    limits: LoginLimits,
    counters: Mutex<Counters>,
}

const WINDOW: Duration = Duration::from_secs(60);
/// Above this many tracked keys, expired entries are swept so memory stays bounded.
const SWEEP_ABOVE: usize = 10_000;

impl MemoryLoginLimiter {
    /// A limiter with these limits.
    pub fn new(limits: LoginLimits) -> Self {
        Self {
            limits,
            counters: Mutex::new(Counters::default()),
        }
    }

    fn attempt_at(&self, now: Instant, ip: IpAddr, account: &str) -> Result<(), Refused> {
        let lockout = Duration::from_secs(self.limits.lockout_secs);
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if c.ip_windows.len() > SWEEP_ABOVE {
            c.ip_windows
                .retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        if c.failures.len() > SWEEP_ABOVE {
            // Forget only failures old enough not to matter: a flood of other keys must not
            // reset the count of an account under attack.
            c.failures
                .retain(|_, f| now.duration_since(f.last) < lockout);
        }
        let key = (account.to_owned(), client_key(ip));
        if let Some(locked_at) = c.failures.get(&key).and_then(|f| f.locked_at) {
            let elapsed = now.duration_since(locked_at);
            if elapsed < lockout {
                return Err(Refused {
                    retry_after_secs: (lockout - elapsed).as_secs().max(1),
                });
            }
            c.failures.remove(&key);
        }
        let window = c.ip_windows.entry(client_key(ip)).or_insert((now, 0));
        if now.duration_since(window.0) >= WINDOW {
            *window = (now, 0);
        }
        if window.1 >= self.limits.per_ip_per_minute {
            let wait = WINDOW.saturating_sub(now.duration_since(window.0));
            return Err(Refused {
                retry_after_secs: wait.as_secs().max(1),
            });
        }
        window.1 += 1;
        Ok(())
    }

    fn failed_at(&self, now: Instant, ip: IpAddr, account: &str) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let key = (account.to_owned(), client_key(ip));
        let entry = c.failures.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            locked_at: None,
        });
        entry.count += 1;
        entry.last = now;
        if entry.count >= self.limits.max_failures && entry.locked_at.is_none() {
            entry.locked_at = Some(now);
        }
    }
}

impl LoginLimiter for MemoryLoginLimiter {
    fn attempt(&self, ip: IpAddr, account: &str) -> Result<(), Refused> {
        self.attempt_at(Instant::now(), ip, account)
    }

    fn failed(&self, ip: IpAddr, account: &str) {
        self.failed_at(Instant::now(), ip, account);
    }

    fn succeeded(&self, ip: IpAddr, account: &str) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        c.failures.remove(&(account.to_owned(), client_key(ip)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn locks_after_max_failures_and_unlocks_later() {
        let limiter = MemoryLoginLimiter::new(LoginLimits {
            per_ip_per_minute: 100,
            max_failures: 3,
            lockout_secs: 60,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.attempt_at(t0, IP, "a@x.io").expect("allowed");
            limiter.failed_at(t0, IP, "a@x.io");
        }
        let refused = limiter.attempt_at(t0, IP, "a@x.io").expect_err("locked");
        assert_eq!(refused.retry_after_secs, 60);
        limiter
            .attempt_at(t0, IP, "b@x.io")
            .expect("other accounts unaffected");
        limiter
            .attempt_at(t0 + Duration::from_secs(61), IP, "a@x.io")
            .expect("unlocked after lockout");
    }

    #[test]
    fn a_stranger_locks_an_account_out_only_from_their_own_address() {
        let limiter = MemoryLoginLimiter::new(LoginLimits {
            per_ip_per_minute: 100,
            max_failures: 3,
            lockout_secs: 60,
        });
        let t0 = Instant::now();
        let stranger: IpAddr = "203.0.113.9".parse().expect("ip");
        let owner: IpAddr = "198.51.100.7".parse().expect("ip");
        for _ in 0..10 {
            let _ = limiter.attempt_at(t0, stranger, "admin@x.io");
            limiter.failed_at(t0, stranger, "admin@x.io");
        }
        assert!(limiter.attempt_at(t0, stranger, "admin@x.io").is_err());
        limiter
            .attempt_at(t0, owner, "admin@x.io")
            .expect("the owner signs in from elsewhere");
    }

    #[test]
    fn success_clears_failures() {
        let limiter = MemoryLoginLimiter::new(LoginLimits {
            per_ip_per_minute: 100,
            max_failures: 2,
            lockout_secs: 60,
        });
        let t0 = Instant::now();
        limiter.failed_at(t0, IP, "a@x.io");
        limiter.succeeded(IP, "a@x.io");
        limiter.failed_at(t0, IP, "a@x.io");
        limiter
            .attempt_at(t0, IP, "a@x.io")
            .expect("one failure is not a lockout");
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let limiter = MemoryLoginLimiter::new(LoginLimits {
            per_ip_per_minute: 1,
            max_failures: 10,
            lockout_secs: 60,
        });
        let t0 = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        limiter.attempt_at(t0, a, "x@x.io").expect("first");
        assert!(limiter.attempt_at(t0, b, "x@x.io").is_err(), "same /64");
        limiter
            .attempt_at(t0, other, "x@x.io")
            .expect("another /64");
    }

    #[test]
    fn a_flood_of_keys_does_not_reset_recent_failures() {
        let limiter = MemoryLoginLimiter::new(LoginLimits {
            per_ip_per_minute: 1_000_000,
            max_failures: 3,
            lockout_secs: 60,
        });
        let t0 = Instant::now();
        limiter.failed_at(t0, IP, "victim@x.io");
        limiter.failed_at(t0, IP, "victim@x.io");
        for i in 0..=SWEEP_ABOVE {
            limiter.failed_at(t0, IP, &format!("junk{i}@x.io"));
        }
        limiter.attempt_at(t0, IP, "trigger@x.io").expect("sweeps");
        limiter.failed_at(t0, IP, "victim@x.io");
        assert!(
            limiter.attempt_at(t0, IP, "victim@x.io").is_err(),
            "third failure still locks"
        );
    }

    #[test]
    fn per_ip_window() {
        let limiter = MemoryLoginLimiter::new(LoginLimits {
            per_ip_per_minute: 2,
            max_failures: 10,
            lockout_secs: 60,
        });
        let t0 = Instant::now();
        limiter.attempt_at(t0, IP, "a@x.io").expect("1");
        limiter.attempt_at(t0, IP, "b@x.io").expect("2");
        assert!(limiter.attempt_at(t0, IP, "c@x.io").is_err());
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        limiter
            .attempt_at(t0, other, "c@x.io")
            .expect("other IP has its own window");
        limiter
            .attempt_at(t0 + WINDOW, IP, "c@x.io")
            .expect("new window");
    }
}
