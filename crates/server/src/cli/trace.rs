//! `hermod trace MESSAGE_ID`: a message's events, one per line, as
//! `<UTC time> <event> key=value ...`.

use hermod_api::Traced;
use hermod_client::Client;

use super::ServerArg;

pub(crate) const EXAMPLES: &str = "Examples:
  hermod trace 01JD3W8ZQ5G0H2K4M6N8P0R2T4
  hermod publish --topic orders hi | xargs hermod trace";

#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    #[command(flatten)]
    pub(crate) server: ServerArg,
    /// The id `hermod publish` printed.
    message_id: String,
}

pub(crate) async fn run(client: &Client, args: TraceArgs) -> anyhow::Result<()> {
    let trace = client.trace(&args.message_id).await?;
    for traced in &trace.events {
        println!("{}", event_line(traced));
    }
    Ok(())
}

/// `<time> <event> key=value ...`, the fields in their JSON order.
fn event_line(traced: &Traced) -> String {
    let mut line = utc(traced.time_ms);
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&traced.event) else {
        return line;
    };
    if let Some(name) = fields.get("event").and_then(|e| e.as_str()) {
        line.push(' ');
        line.push_str(name);
    }
    for (key, value) in fields.iter().filter(|(k, _)| *k != "event") {
        line.push_str(&format!(" {key}={}", super::output::plain(value)));
    }
    line
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn utc(time_ms: i64) -> String {
    let days = time_ms.div_euclid(86_400_000);
    let ms_of_day = time_ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, m) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60);
    let (s, ms) = (ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`), to avoid a date crate for one line.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use hermod_api::Event;

    use super::*;

    #[test]
    fn times_are_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn events_print_their_fields() {
        let traced = Traced {
            time_ms: 0,
            event: Event::Published {
                topic: "orders".into(),
                partition: 1,
                offset: 7,
            },
        };
        assert_eq!(
            event_line(&traced),
            "1970-01-01T00:00:00.000Z published offset=7 partition=1 topic=orders"
        );
    }
}
