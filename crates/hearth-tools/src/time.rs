//! `current_time`: the current time in a time zone, or a time converted between zones, from
//! the system's time-zone database.

use futures_util::future::BoxFuture;
use hearth_llm::ToolSpec;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::{Tool, ToolError};

/// The `current_time` tool.
pub struct CurrentTime;

impl Tool for CurrentTime {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "current_time".into(),
            description:
                "Gives the current date and time in an IANA time zone (default UTC), or \
                          converts a local date-time (`2026-03-01T09:30`) from one zone to another."
                    .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "timezone": {"type": "string", "description": "IANA zone of the answer, e.g. Europe/Paris."},
                    "time": {"type": "string", "description": "A local date-time to convert instead of now."},
                    "from_timezone": {"type": "string", "description": "The zone `time` is in (default UTC)."}
                },
                "additionalProperties": false,
            }),
        }
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, Result<String, ToolError>> {
        Box::pin(async move {
            let zone = |field: &str| -> Result<TimeZone, ToolError> {
                match arguments[field].as_str() {
                    None | Some("") => Ok(TimeZone::UTC),
                    Some(name) => TimeZone::get(name).map_err(|_| {
                        ToolError::Failed(format!(
                            "unknown time zone `{name}` (use an IANA name such as Europe/Paris)"
                        ))
                    }),
                }
            };
            let target = zone("timezone")?;
            let instant = match arguments["time"].as_str() {
                None | Some("") => Timestamp::now(),
                Some(text) => {
                    let local: DateTime = text.parse().map_err(|_| {
                        ToolError::Failed(format!(
                            "`{text}` is not a date-time like 2026-03-01T09:30"
                        ))
                    })?;
                    local
                        .to_zoned(zone("from_timezone")?)
                        .map_err(|e| ToolError::Failed(e.to_string()))?
                        .timestamp()
                }
            };
            let zoned = instant.to_zoned(target);
            Ok(format!(
                "{} ({}, {})",
                zoned.strftime("%Y-%m-%d %H:%M:%S %Z (UTC%:z)"),
                zoned.strftime("%A"),
                zoned.time_zone().iana_name().unwrap_or("UTC")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn converts_between_zones_and_rejects_unknown_ones() {
        let out = CurrentTime
            .call(json!({"time": "2026-01-15T12:00", "from_timezone": "UTC", "timezone": "Asia/Tokyo"}))
            .await
            .expect("converts");
        assert!(out.starts_with("2026-01-15 21:00:00"), "{out}");
        let now = CurrentTime.call(json!({})).await.expect("now");
        assert!(now.contains("UTC"), "{now}");
        assert!(CurrentTime
            .call(json!({"timezone": "Mars/Olympus"}))
            .await
            .is_err());
        assert!(CurrentTime
            .call(json!({"time": "yesterday"}))
            .await
            .is_err());
    }
}
