//! Recurring jobs: a five-field cron expression read in an IANA time zone, and the job each
//! tick enqueues. Every instance may call [`Queue::fire_due`]; a tick fires once however many
//! do, because its job is enqueued under the idempotency key `schedule:<name>:<tick>` (a
//! second enqueue returns the first job) before the schedule is moved on by a compare-and-set
//! (a second move finds the tick gone). Ticks missed while nothing ran coalesce into one.

use std::str::FromStr;

use hearth_store::{Enqueued, NewJob, NewSchedule, Schedule, Timestamp};

use crate::{JobSpec, JobsError, Queue};

/// Longest schedule name.
pub const MAX_SCHEDULE_NAME: usize = 100;
/// Schedules fired per [`Queue::fire_due`] call (the rest wait for the next call).
const DUE_BATCH: i64 = 100;

/// A parsed cron expression in its time zone.
#[derive(Clone, Debug)]
pub struct Cron {
    schedule: jiff_cron::Schedule,
    tz: jiff::tz::TimeZone,
}

impl Cron {
    /// Parses `expr` (`minute hour day-of-month month day-of-week`, as in crontab: numbers,
    /// `*`, lists, ranges, steps, month and day names, day 0 or 7 for Sunday; or one of
    /// `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`) in `timezone` (`UTC`,
    /// `Europe/Paris`…). Unlike crontab, restricting both day fields is refused (crontab fires
    /// on either). The error names the field at fault.
    pub fn parse(expr: &str, timezone: &str) -> Result<Self, JobsError> {
        let invalid = |field, message: String| JobsError::Invalid { field, message };
        let tz = jiff::tz::TimeZone::get(timezone.trim()).map_err(|_| {
            invalid(
                "timezone",
                format!("`{timezone}` is not a known IANA time zone (e.g. `UTC`, `Europe/Paris`)"),
            )
        })?;
        let six = to_six_fields(expr).map_err(|m| invalid("cron", m))?;
        let schedule = jiff_cron::Schedule::from_str(&six)
            .map_err(|e| invalid("cron", format!("`{expr}` does not parse: {e}")))?;
        let cron = Self { schedule, tz };
        if cron.next_after(Timestamp::now()).is_none() {
            return Err(invalid("cron", format!("`{expr}` never fires")));
        }
        Ok(cron)
    }

    /// The first tick strictly after `at`.
    pub fn next_after(&self, at: Timestamp) -> Option<Timestamp> {
        let after = jiff::Timestamp::from_millisecond(at.millis())
            .ok()?
            .to_zoned(self.tz.clone());
        let next = self.schedule.after(after).next()?;
        Some(Timestamp::from_millis(next.timestamp().as_millisecond()))
    }
}

/// crontab's five fields as the parser's six (seconds first), with day-of-week spelt in names:
/// crontab counts days from Sunday = 0 (7 too), the parser from Sunday = 1.
fn to_six_fields(expr: &str) -> Result<String, String> {
    let expr = expr.trim();
    if expr.starts_with('@') {
        return match expr {
            "@hourly" | "@daily" | "@weekly" | "@monthly" | "@yearly" | "@annually" => {
                Ok(expr.replace("@annually", "@yearly"))
            }
            _ => Err(format!(
                "`{expr}` is not one of @hourly, @daily, @weekly, @monthly, @yearly"
            )),
        };
    }
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let [minute, hour, day, month, weekday] = fields[..] else {
        return Err(format!(
            "has {} fields; write five: minute hour day-of-month month day-of-week",
            fields.len()
        ));
    };
    // crontab fires when either day field matches if both are restricted; the parser needs
    // both to match. Rather than fire on other days than the user meant, refuse the mix.
    let any = |f: &str| f == "*" || f == "?";
    if !any(day) && !any(weekday) {
        return Err(
            "restricts both the day of month and the day of week; crontab reads that as \
             either, this scheduler cannot: restrict one of them (or use two schedules)"
                .into(),
        );
    }
    Ok(format!(
        "0 {minute} {hour} {day} {month} {}",
        weekdays(weekday)?
    ))
}

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// A crontab day-of-week field as a list of day names.
fn weekdays(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok("*".into());
    }
    let day = |s: &str| -> Result<usize, String> {
        if let Ok(n) = s.parse::<usize>() {
            return (n <= 7)
                .then_some(n % 7)
                .ok_or_else(|| format!("day of week `{s}` is not 0 to 7"));
        }
        DAYS.iter()
            .position(|d| d.eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("`{s}` is not a day of the week (0-7 or Sun-Sat)"))
    };
    let mut on = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step = s
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=7).contains(n))
                    .ok_or_else(|| format!("step `{s}` in the day of week is not 1 to 7"))?;
                (r, step)
            }
            None => (item, 1),
        };
        // Ends as crontab numbers (7 allowed as the last Sunday), so `5-7` is Fri-Sun.
        let end = |s: &str| -> Result<usize, String> {
            match s.parse::<usize>() {
                Ok(7) => Ok(7),
                _ => day(s),
            }
        };
        let (from, to) = match range.split_once('-') {
            _ if range == "*" => (0, 6),
            Some((a, b)) => (day(a)?, end(b)?),
            None if item.contains('/') => (day(range)?, 6),
            None => {
                let d = day(range)?;
                (d, d)
            }
        };
        if from > to {
            return Err(format!("day-of-week range `{range}` runs backwards"));
        }
        for d in (from..=to).step_by(step) {
            on[d % 7] = true;
        }
    }
    Ok(DAYS
        .iter()
        .zip(on)
        .filter(|(_, on)| *on)
        .map(|(d, _)| *d)
        .collect::<Vec<_>>()
        .join(","))
}

/// A recurring job to create or replace.
#[derive(Clone, Debug)]
pub struct ScheduleSpec {
    /// Unique: 1 to 100 of a-z, 0-9, `_`, `.`, `-` and `:`.
    pub name: String,
    pub cron: String,
    /// IANA time zone (default `UTC`).
    pub timezone: String,
    /// The job each tick enqueues (its `run_at` and idempotency key are the tick's).
    pub job: JobSpec,
    pub enabled: bool,
}

impl ScheduleSpec {
    /// An enabled schedule of `job` at `cron` in UTC.
    pub fn new(name: impl Into<String>, cron: impl Into<String>, job: JobSpec) -> Self {
        Self {
            name: name.into(),
            cron: cron.into(),
            timezone: "UTC".into(),
            job,
            enabled: true,
        }
    }

    pub fn timezone(mut self, tz: impl Into<String>) -> Self {
        self.timezone = tz.into();
        self
    }

    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
}

impl Queue {
    /// Creates or replaces a schedule; its next tick is the first after now.
    pub async fn put_schedule(&self, spec: ScheduleSpec) -> Result<Schedule, JobsError> {
        let name_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-:".contains(c);
        if spec.name.is_empty()
            || spec.name.len() > MAX_SCHEDULE_NAME
            || !spec.name.chars().all(name_ok)
        {
            return Err(JobsError::Invalid {
                field: "name",
                message: format!(
                    "must be 1 to {MAX_SCHEDULE_NAME} of a-z, 0-9, `_`, `.`, `-` and `:`"
                ),
            });
        }
        let cron = Cron::parse(&spec.cron, &spec.timezone)?;
        let job = spec.job.into_new(&self.settings)?;
        let next_at = cron
            .next_after(Timestamp::now())
            .ok_or_else(|| JobsError::Invalid {
                field: "cron",
                message: "never fires".into(),
            })?;
        Ok(self
            .store
            .put_schedule(&NewSchedule {
                name: spec.name,
                cron: spec.cron.trim().to_owned(),
                timezone: spec.timezone.trim().to_owned(),
                kind: job.kind,
                payload: job.payload,
                owner: job.owner,
                priority: job.priority,
                max_attempts: job.max_attempts,
                enabled: spec.enabled,
                next_at,
            })
            .await?)
    }

    /// Deletes a schedule; false when there was none.
    pub async fn delete_schedule(&self, name: &str) -> Result<bool, JobsError> {
        Ok(self.store.delete_schedule(name).await?)
    }

    /// Every schedule, by name.
    pub async fn schedules(&self) -> Result<Vec<Schedule>, JobsError> {
        Ok(self.store.list_schedules().await?)
    }

    /// Fires the schedules due at `now`: enqueues each due tick's job (once, whoever else
    /// fires it) and moves the schedule to its first tick after `now`. Returns the jobs this
    /// call enqueued. A schedule whose stored expression no longer parses (a time zone gone
    /// from the system's database) is skipped with a warning.
    pub async fn fire_due(&self, now: Timestamp) -> Result<u64, JobsError> {
        let mut fired = 0;
        for s in self.store.due_schedules(now, DUE_BATCH).await? {
            let cron = match Cron::parse(&s.cron, &s.timezone) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(schedule = %s.name, error = %e, "a schedule cannot be read; skipped");
                    continue;
                }
            };
            let tick = s.next_at;
            let Some(next) = cron.next_after(if now > tick { now } else { tick }) else {
                continue;
            };
            let job = NewJob {
                kind: s.kind.clone(),
                payload: s.payload.clone(),
                owner: s.owner,
                priority: s.priority,
                run_at: tick,
                max_attempts: s.max_attempts,
                idempotency_key: Some(format!("schedule:{}:{}", s.name, tick.millis())),
            };
            let out = self.store.enqueue_jobs(&[job]).await?;
            if matches!(out.first(), Some(Enqueued::New(_))) {
                fired += 1;
                self.wake.notify_one();
            }
            // Losing the move means another instance moved it: it enqueued the same job.
            self.store.advance_schedule(&s.name, tick, next).await?;
        }
        Ok(fired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        let t: jiff::Timestamp = s.parse().expect("timestamp");
        Timestamp::from_millis(t.as_millisecond())
    }

    fn show(t: Timestamp) -> String {
        jiff::Timestamp::from_millisecond(t.millis())
            .expect("in range")
            .to_string()
    }

    #[test]
    fn weekdays_count_from_sunday_zero_like_crontab() {
        assert_eq!(weekdays("1-5").expect("1-5"), "Mon,Tue,Wed,Thu,Fri");
        assert_eq!(weekdays("0").expect("0"), "Sun");
        assert_eq!(weekdays("7").expect("7"), "Sun");
        assert_eq!(weekdays("5-7").expect("5-7"), "Sun,Fri,Sat");
        assert_eq!(weekdays("*/2").expect("*/2"), "Sun,Tue,Thu,Sat");
        assert_eq!(weekdays("mon,WED,fri").expect("mon,WED,fri"), "Mon,Wed,Fri");
        assert_eq!(weekdays("1/3").expect("1/3"), "Mon,Thu");
        assert_eq!(weekdays("*").expect("*"), "*");
        for bad in ["8", "5-1", "funday", "*/0", "1-"] {
            assert!(weekdays(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ticks_follow_the_expression_in_its_time_zone() {
        // 09:00 on weekdays in Paris: Friday 2026-12-04 10:00 UTC is past Friday's tick, so
        // the next is Monday 09:00 Paris (08:00 UTC in winter).
        let cron = Cron::parse("0 9 * * 1-5", "Europe/Paris").expect("parses");
        let next = cron.next_after(at("2026-12-04T10:00:00Z")).expect("parses");
        assert_eq!(show(next), "2026-12-07T08:00:00Z");
        // Strictly after: a tick is not its own next.
        assert_eq!(
            show(cron.next_after(next).expect("parses")),
            "2026-12-08T08:00:00Z"
        );
        // Summer time moves the tick in UTC, not in Paris.
        let summer = cron.next_after(at("2026-07-01T00:00:00Z")).expect("parses");
        assert_eq!(show(summer), "2026-07-01T07:00:00Z");
        let every = Cron::parse("*/15 * * * *", "UTC").expect("parses");
        assert_eq!(
            show(
                every
                    .next_after(at("2026-12-04T10:07:30Z"))
                    .expect("parses")
            ),
            "2026-12-04T10:15:00Z"
        );
        let daily = Cron::parse("@daily", "America/New_York").expect("parses");
        assert_eq!(
            show(
                daily
                    .next_after(at("2026-12-04T10:00:00Z"))
                    .expect("parses")
            ),
            "2026-12-05T05:00:00Z"
        );
    }

    #[test]
    fn a_local_time_skipped_by_daylight_saving_does_not_stop_the_schedule() {
        // 02:30 does not exist in Paris on 2027-03-28; the schedule still fires after it.
        let cron = Cron::parse("30 2 * * *", "Europe/Paris").expect("parses");
        let next = cron.next_after(at("2027-03-27T12:00:00Z")).expect("parses");
        let after = cron.next_after(next).expect("parses");
        assert!(after > next);
        assert!(show(after).starts_with("2027-03-29"), "{}", show(after));
    }

    #[test]
    fn bad_expressions_name_their_field() {
        let field = |expr: &str, tz: &str| match Cron::parse(expr, tz) {
            Err(JobsError::Invalid { field, .. }) => field,
            other => panic!("{expr} in {tz}: {other:?}"),
        };
        assert_eq!(field("0 9 * *", "UTC"), "cron");
        assert_eq!(field("0 9 * * * *", "UTC"), "cron");
        assert_eq!(field("61 * * * *", "UTC"), "cron");
        assert_eq!(field("0 25 * * *", "UTC"), "cron");
        assert_eq!(field("0 0 30 2 *", "UTC"), "cron");
        assert_eq!(field("@sometimes", "UTC"), "cron");
        assert_eq!(field("0 0 1 * 1", "UTC"), "cron");
        assert_eq!(field("0 9 * * 1-5", "Mars/Olympus"), "timezone");
        assert_eq!(field("0 9 * * 1-5", ""), "timezone");
    }
}
