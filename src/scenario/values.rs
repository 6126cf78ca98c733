//! Readers for single values (durations, probabilities, bounded integers, choices) and tables
//! (known keys, required keys). Each reader records a problem and returns `None` on bad input,
//! so that the walk goes on and finds the other problems of the file too.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::errors::{did_you_mean, Ctx};

pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// Nanoseconds; every duration in a validated scenario is one. Defined with the readers that
/// produce it, below the model that holds it.
pub type DurationNs = u64;

/// `path.key`, or `key` at the top level.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A short description of a found value for "expected X, found Y".
pub(crate) fn describe(value: &DeValue<'_>) -> String {
    const SHOWN_CHARS_MAX: usize = 40;
    match value {
        DeValue::String(s) => {
            let shown: String = s.chars().take(SHOWN_CHARS_MAX).collect();
            let ellipsis = if s.chars().count() > SHOWN_CHARS_MAX {
                "..."
            } else {
                ""
            };
            format!("{:?}", format!("{shown}{ellipsis}"))
        }
        DeValue::Integer(i) => i.to_string(),
        DeValue::Float(f) => f.to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => format!("the date-time {d}"),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

impl Ctx<'_> {
    /// "expected {what}, found {value}".
    pub fn expected(&mut self, value: &Value<'_>, path: &str, what: &str) {
        let message = format!("expected {what}, found {}", describe(value.get_ref()));
        self.error(value.span(), path, message);
    }
}

pub(crate) fn table<'a, 'i>(
    ctx: &mut Ctx,
    value: &'a Value<'i>,
    path: &str,
) -> Option<&'a DeTable<'i>> {
    match value.get_ref() {
        DeValue::Table(t) => Some(t),
        _ => {
            ctx.expected(value, path, "a table");
            None
        }
    }
}

/// Reports every key of `t` not in `known`, with the closest known key as a suggestion.
pub(crate) fn check_keys(ctx: &mut Ctx, t: &DeTable<'_>, path: &str, known: &[&str]) {
    #[cfg(test)]
    accepted::record(path, known);
    for (key, _) in t.iter() {
        let name: &str = key.get_ref();
        if known.contains(&name) {
            continue;
        }
        let help = did_you_mean(name, known)
            .or_else(|| Some(format!("expected one of: {}", known.join(", "))));
        ctx.problem(
            key.span(),
            &join(path, name),
            format!("unknown key '{name}'"),
            help,
        );
    }
}

pub(crate) fn get<'a, 'i>(t: &'a DeTable<'i>, key: &str) -> Option<&'a Value<'i>> {
    t.get(key)
}

/// The value of a key that must be present; `table_span` locates the complaint if it is not.
pub(crate) fn required<'a, 'i>(
    ctx: &mut Ctx,
    t: &'a DeTable<'i>,
    table_span: Range<usize>,
    path: &str,
    key: &str,
) -> Option<&'a Value<'i>> {
    let value = get(t, key);
    if value.is_none() {
        ctx.error(
            table_span,
            &join(path, key),
            format!("missing required key '{key}'"),
        );
    }
    value
}

/// Reads `t.key` with `read` if present, else `default`; a bad value also yields `default` (the
/// problem is recorded, so the scenario is rejected anyway).
pub(crate) fn field<'i, T>(
    ctx: &mut Ctx,
    t: &DeTable<'i>,
    path: &str,
    key: &str,
    default: T,
    read: impl FnOnce(&mut Ctx, &Value<'i>, &str) -> Option<T>,
) -> T {
    match get(t, key) {
        Some(value) => read(ctx, value, &join(path, key)).unwrap_or(default),
        None => default,
    }
}

pub(crate) fn string<'a>(ctx: &mut Ctx, value: &'a Value<'_>, path: &str) -> Option<&'a str> {
    match value.get_ref() {
        DeValue::String(s) => Some(s.as_ref()),
        _ => {
            ctx.expected(value, path, "a string");
            None
        }
    }
}

pub(crate) fn boolean(ctx: &mut Ctx, value: &Value<'_>, path: &str) -> Option<bool> {
    match value.get_ref() {
        DeValue::Boolean(b) => Some(*b),
        _ => {
            ctx.expected(value, path, "true or false");
            None
        }
    }
}

/// The index in `options` of a string value.
pub(crate) fn choice(
    ctx: &mut Ctx,
    value: &Value<'_>,
    path: &str,
    options: &[&str],
) -> Option<usize> {
    let quoted: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
    let what = format!("one of {}", quoted.join(", "));
    let DeValue::String(s) = value.get_ref() else {
        ctx.expected(value, path, &what);
        return None;
    };
    let found = options.iter().position(|o| *o == s.as_ref());
    if found.is_none() {
        let message = format!("expected {what}, found {}", describe(value.get_ref()));
        ctx.problem(value.span(), path, message, did_you_mean(s, options));
    }
    found
}

/// Any finite number, integer or float.
pub(crate) fn number(ctx: &mut Ctx, value: &Value<'_>, path: &str, what: &str) -> Option<f64> {
    let parsed = match value.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(|n| n as f64),
        DeValue::Float(f) => f.as_str().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    };
    if parsed.is_none() {
        ctx.expected(value, path, what);
    }
    parsed
}

/// A number in `[min, max]`; `what` describes the range for the message.
pub(crate) fn number_in(
    ctx: &mut Ctx,
    value: &Value<'_>,
    path: &str,
    min: f64,
    max: f64,
    what: &str,
) -> Option<f64> {
    let x = number(ctx, value, path, what)?;
    if x < min || x > max {
        ctx.expected(value, path, what);
        return None;
    }
    Some(x)
}

/// A number > 0.
pub(crate) fn positive_number(ctx: &mut Ctx, value: &Value<'_>, path: &str) -> Option<f64> {
    let x = number(ctx, value, path, "a number > 0")?;
    if x <= 0.0 {
        ctx.expected(value, path, "a number > 0");
        return None;
    }
    Some(x)
}

pub(crate) fn probability(ctx: &mut Ctx, value: &Value<'_>, path: &str) -> Option<f64> {
    number_in(ctx, value, path, 0.0, 1.0, "a probability in [0, 1]")
}

/// An integer in `[min, max]`.
pub(crate) fn integer(
    ctx: &mut Ctx,
    value: &Value<'_>,
    path: &str,
    min: u64,
    max: u64,
) -> Option<u64> {
    let parsed = match value.get_ref() {
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    };
    let n = parsed
        .and_then(|n| u64::try_from(n).ok())
        .filter(|n| (min..=max).contains(n));
    if n.is_none() {
        // Huge maxima are limits of the representation, not of the model: name them only when hit.
        let what = match parsed {
            _ if max < u64::from(u32::MAX) => format!("an integer in [{min}, {max}]"),
            Some(p) if p > i128::from(max) => format!("an integer <= {max}"),
            _ => format!("an integer >= {min}"),
        };
        ctx.expected(value, path, &what);
    }
    n
}

pub(crate) fn duration(ctx: &mut Ctx, value: &Value<'_>, path: &str) -> Option<DurationNs> {
    let DeValue::String(s) = value.get_ref() else {
        ctx.expected(value, path, "a duration string with a unit, like \"250ms\"");
        return None;
    };
    match parse_duration(s) {
        Ok(ns) => Some(ns),
        Err(why) => {
            let message = format!("{why}, found {}", describe(value.get_ref()));
            let help = Some("durations are strings like \"250us\", \"1.5s\", \"10m\"".to_string());
            ctx.problem(value.span(), path, message, help);
            None
        }
    }
}

/// A duration that must be positive.
pub(crate) fn duration_positive(
    ctx: &mut Ctx,
    value: &Value<'_>,
    path: &str,
) -> Option<DurationNs> {
    let ns = duration(ctx, value, path)?;
    if ns == 0 {
        ctx.expected(value, path, "a positive duration");
        return None;
    }
    Some(ns)
}

/// Floor of every duration that arms a repeating timer (`devices.retry_initial`,
/// `devices.retry_max`, `devices.online_mean`, `run.interval`): below it a timer fires so often
/// that the run does nothing but fire it (a `retry_initial` of 1ns resends every nanosecond
/// until acked, gigabytes in seconds), and no real client or server re-arms faster.
pub const TIMER_FLOOR_NS: DurationNs = 1_000_000;

/// A duration that arms a repeating timer: at least [`TIMER_FLOOR_NS`].
pub(crate) fn timer_duration(ctx: &mut Ctx, value: &Value<'_>, path: &str) -> Option<DurationNs> {
    let ns = duration(ctx, value, path)?;
    if ns < TIMER_FLOOR_NS {
        let message = format!(
            "expected at least 1ms, found {}: it re-arms a repeating timer, and a shorter one \
             makes the run fire it without end (memory and time grow without bound)",
            describe(value.get_ref())
        );
        ctx.error(value.span(), path, message);
        return None;
    }
    Some(ns)
}

const DURATION_UNITS: [(&str, u128); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// Parses `"<digits>[.<digits>]<unit>"` into nanoseconds with integer math only, so `"1.5s"` is
/// exactly 1_500_000_000 and never 1_499_999_999.
pub(crate) fn parse_duration(text: &str) -> Result<DurationNs, String> {
    const DIGITS_MAX: usize = 30;
    if text.starts_with('-') {
        return Err("expected a non-negative duration".to_string());
    }
    let unit_start = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_start);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || (number.contains('.') && fraction.is_empty()) || fraction.contains('.') {
        return Err("expected a duration like \"250ms\" or \"1.5s\"".to_string());
    }
    if unit.is_empty() {
        return Err("expected a duration with a unit (ns, us, ms, s, m, h, d)".to_string());
    }
    let Some((_, unit_ns)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(format!(
            "unknown duration unit '{unit}', expected one of ns, us, ms, s, m, h, d"
        ));
    };
    let too_long = || "duration too large: at most about 584 years (2^64 ns)".to_string();
    if whole.trim_start_matches('0').len() > DIGITS_MAX || fraction.len() > DIGITS_MAX {
        return Err(too_long());
    }
    let whole: u128 = whole.parse().map_err(|_| too_long())?;
    let fraction_value: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| too_long())?
    };
    let scale = 10u128.pow(u32::try_from(fraction.len()).map_err(|_| too_long())?);
    let fraction_ns = fraction_value.checked_mul(*unit_ns).ok_or_else(too_long)?;
    if fraction_ns % scale != 0 {
        return Err("expected a whole number of nanoseconds".to_string());
    }
    let ns = whole
        .checked_mul(*unit_ns)
        .and_then(|w| w.checked_add(fraction_ns / scale))
        .ok_or_else(too_long)?;
    u64::try_from(ns).map_err(|_| too_long())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_exactly() {
        assert_eq!(parse_duration("250us"), Ok(250_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("0.1ms"), Ok(100_000));
        assert_eq!(parse_duration("10m"), Ok(600_000_000_000));
        assert_eq!(parse_duration("30d"), Ok(30 * 86_400_000_000_000));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert_eq!(parse_duration("007ns"), Ok(7));
        assert_eq!(parse_duration("18446744073709551615ns"), Ok(u64::MAX));
    }

    #[test]
    fn bad_durations_are_errors() {
        for bad in [
            "",
            "-1s",
            "5",
            "5x",
            "s",
            ".5s",
            "5.s",
            "1.2.3s",
            "1 s",
            "1.0000000001ns",
            "18446744073709551616ns",
            "999999d",
            "1e3s",
            "99999999999999999999999999999999999999999999d",
            "5sec",
            "+5s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse_duration("-1s").unwrap_err().contains("non-negative"));
        assert!(parse_duration("5").unwrap_err().contains("unit"));
        assert!(parse_duration("5x")
            .unwrap_err()
            .contains("unknown duration unit 'x'"));
    }
}

/// Test builds only: every key a table accepts, as the parser walks it, so that a test can hold
/// the key reference in docs/SCENARIOS.md to what the parser accepts.
#[cfg(test)]
pub(crate) mod accepted {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    thread_local! {
        static SEEN: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
    }

    /// `path` with its instances made generic: `provider[2]` -> `provider[]`, a hop class ->
    /// `<hop>`, a node kind under `capacity` -> `<node>`, a metric under `expect` -> `<metric>`, an
    /// operation under `cost_table` -> `<op>`.
    pub fn generic(path: &str) -> String {
        if path.starts_with("expect.") {
            // A metric's name may have dots (`interop.p99_ms`): one `<metric>` for all.
            return "expect.<metric>".to_string();
        }
        if path.starts_with("plan.solve.") {
            // A knob is a quoted dotted key (`"capacity.gateway.cores"`).
            return "plan.solve.<knob>".to_string();
        }
        let mut out: Vec<String> = Vec::new();
        for seg in path.split('.').filter(|s| !s.is_empty()) {
            let seg = match seg.find('[') {
                Some(i) => format!("{}[]", &seg[..i]),
                None => seg.to_string(),
            };
            let parent = out.last().map(String::as_str);
            let seg = match (parent, seg.as_str()) {
                (Some("cost_table"), _) => "<op>".to_string(),
                (
                    Some("network"),
                    "client_server" | "server_gateway" | "gateway_partner" | "adapter_server"
                    | "provider_provider",
                ) => "<hop>".to_string(),
                (Some("capacity"), "gateway" | "chat_server" | "adapter") => "<node>".to_string(),
                _ => seg,
            };
            out.push(seg);
        }
        out.join(".")
    }

    pub fn record(path: &str, known: &[&str]) {
        let base = generic(path);
        SEEN.with(|s| {
            let mut s = s.borrow_mut();
            for k in known {
                s.insert(if base.is_empty() {
                    k.to_string()
                } else {
                    format!("{base}.{k}")
                });
            }
        });
    }

    /// What this thread's parses have accepted so far.
    pub fn seen() -> BTreeSet<String> {
        SEEN.with(|s| s.borrow().clone())
    }
}
