//! Times, dates and devices as people read them: "3 hours ago" (with the exact UTC time on
//! hover), "due tomorrow", "Chrome on Linux" (the user-agent string parsed by woothee).

use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

fn short_date(d: Date, today: Date) -> String {
    let m = MONTHS[usize::from(u8::from(d.month())) - 1];
    if d.year() == today.year() {
        format!("{} {m}", d.day())
    } else {
        format!("{} {m} {}", d.day(), d.year())
    }
}

/// How long ago (or how soon) `at` is from `now`, in words.
pub fn relative(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (now - at).whole_seconds();
    let (ahead, s) = if secs < 0 {
        (true, -secs)
    } else {
        (false, secs)
    };
    let words = match s {
        0..=44 => return "just now".into(),
        45..=3_599 => plural((s + 30) / 60, "minute"),
        3_600..=86_399 => plural((s + 1_800) / 3_600, "hour"),
        86_400..=604_799 => {
            let days = (s + 43_200) / 86_400;
            if days == 1 {
                return if ahead { "tomorrow" } else { "yesterday" }.into();
            }
            plural(days, "day")
        }
        _ => return short_date(at.date(), now.date()),
    };
    if ahead {
        format!("in {words}")
    } else {
        format!("{words} ago")
    }
}

/// An RFC 3339 time as `<time>`: relative words, the exact UTC time on hover. Anything else is
/// shown as it is (escaped).
pub fn time_html(rfc3339: &str, now_ms: i64) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let Ok(at) = OffsetDateTime::parse(rfc3339, &Rfc3339) else {
        return esc(rfc3339);
    };
    let now =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000).unwrap_or(at);
    let at = at.to_offset(time::UtcOffset::UTC);
    let exact = format!(
        "{} {:02}:{:02} UTC",
        short_date(at.date(), Date::MIN),
        at.hour(),
        at.minute()
    );
    format!(
        "<time datetime=\"{}\" title=\"{}\">{}</time>",
        esc(rfc3339),
        esc(&exact),
        esc(&relative(at, now))
    )
}

/// A due date (`YYYY-MM-DD`) in words relative to today (UTC): "today", "tomorrow", "in 3 days",
/// "2 days ago", else the date.
pub fn due_words(date: &str, now_ms: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let Ok(d) = Date::parse(date, &fmt) else {
        return date.to_string();
    };
    let today = OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
        .map_or(d, |n| n.date());
    match (d - today).whole_days() {
        0 => "today".into(),
        1 => "tomorrow".into(),
        -1 => "yesterday".into(),
        n @ 2..=6 => format!("in {n} days"),
        n @ -6..=-2 => format!("{} days ago", -n),
        _ => short_date(d, today),
    }
}

/// "Chrome on Linux" for a user-agent string; "Unknown device" when it says nothing.
pub fn device(user_agent: &str) -> String {
    let parsed = woothee::parser::Parser::new().parse(user_agent);
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    match parsed {
        Some(r) if known(r.name) && known(r.os) => format!("{} on {}", r.name, r.os),
        Some(r) if known(r.name) => r.name.to_string(),
        Some(r) if known(r.os) => format!("A browser on {}", r.os),
        _ => "Unknown device".into(),
    }
}

/// A size in bytes as people read it: "512 bytes", "1.5 KB", "12 MB" (powers of 1024).
pub fn file_size(bytes: i64) -> String {
    let b = bytes.max(0) as f64;
    const UNITS: [&str; 5] = ["KB", "MB", "GB", "TB", "PB"];
    if b < 1024.0 {
        return if bytes == 1 {
            "1 byte".into()
        } else {
            format!("{} bytes", bytes.max(0))
        };
    }
    let mut v = b / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    if v < 10.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).expect("time")
    }

    #[test]
    fn times_read_as_words() {
        let now = at("2026-12-01T12:00:00Z");
        assert_eq!(relative(at("2026-12-01T11:59:50Z"), now), "just now");
        assert_eq!(relative(at("2026-12-01T11:57:00Z"), now), "3 minutes ago");
        assert_eq!(relative(at("2026-12-01T11:00:00Z"), now), "1 hour ago");
        assert_eq!(relative(at("2026-11-30T12:00:00Z"), now), "yesterday");
        assert_eq!(relative(at("2026-11-27T12:00:00Z"), now), "4 days ago");
        assert_eq!(relative(at("2026-12-01T14:00:00Z"), now), "in 2 hours");
        assert_eq!(relative(at("2026-10-03T12:00:00Z"), now), "3 Oct");
        assert_eq!(relative(at("2025-10-03T12:00:00Z"), now), "3 Oct 2025");
        let html = time_html("2026-12-01T11:57:00Z", now.unix_timestamp() * 1000);
        assert_eq!(
            html,
            "<time datetime=\"2026-12-01T11:57:00Z\" title=\"1 Dec 2026 11:57 UTC\">3 minutes ago</time>"
        );
        assert_eq!(time_html("<b>", 0), "&lt;b&gt;");
    }

    #[test]
    fn due_dates_read_as_words() {
        let now = at("2026-12-01T23:00:00Z").unix_timestamp() * 1000;
        assert_eq!(due_words("2026-12-01", now), "today");
        assert_eq!(due_words("2026-12-02", now), "tomorrow");
        assert_eq!(due_words("2026-11-28", now), "3 days ago");
        assert_eq!(due_words("2027-01-20", now), "20 Jan 2027");
    }

    #[test]
    fn devices_read_as_browser_on_system() {
        assert_eq!(
            device("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"),
            "Chrome on Linux"
        );
        assert_eq!(
            device("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"),
            "Safari on iPhone"
        );
        assert_eq!(device(""), "Unknown device");
        assert_eq!(device("curl/8.0"), "HTTP Library");
    }

    #[test]
    fn file_sizes_read_as_words() {
        assert_eq!(super::file_size(0), "0 bytes");
        assert_eq!(super::file_size(1), "1 byte");
        assert_eq!(super::file_size(1536), "1.5 KB");
        assert_eq!(super::file_size(12 * 1024 * 1024), "12 MB");
        assert_eq!(super::file_size(3 * 1024 * 1024 * 1024), "3.0 GB");
    }
}
