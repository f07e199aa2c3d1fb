//! Decimal numbers in settings and messages without std's floating-point parser and printer.
//!
//! `str::parse::<f64>` and `{}` on an `f64` bring in std's correctly rounded decimal
//! conversions (dec2flt with its 10 KB table of powers of five, flt2dec's Grisu and Dragon): about
//! 28 KB of the board binary, for a handful of settings (`--flood-rate 0.5`, `--ping-interval
//! 1.5`) and messages (`Ping timeout: 90 seconds`). This module does the same jobs with integer
//! arithmetic.
//!
//! Invariants:
//! - [`parse_f64`] accepts exactly the strings `str::parse::<f64>` accepts, and returns the same
//!   value whenever the digits fit the fast path every setting's values lie in: at most 15
//!   significant digits (below 2^53) and a decimal exponent within ±22 of them, where one rounding
//!   of an exact `f64` product or quotient is the correctly rounded result. Outside it the value
//!   can differ in the last bits.
//! - [`Seconds`] prints a duration as `{}` prints `as_secs_f64()` (`30`, `0.5`, `1.25`): exact
//!   decimal digits, no trailing zeros, for every duration whose seconds have at most 15
//!   significant digits.
//! - [`Fixed`] rounds half up (a float printer rounds the binary value, so a tie can go the other
//!   way); it is used for statistics only.

use std::fmt;
use std::time::Duration;

/// Parses a decimal as `str::parse::<f64>` does: an optional sign, digits with an optional `.`
/// (at least one digit), an optional exponent (`e` or `E`, optional sign, digits), or `inf`,
/// `infinity`, `nan` in any case. `None` for anything else (spaces included).
///
/// ```
/// use chatnode::decimal::parse_f64;
/// assert_eq!(parse_f64("0.5"), Some(0.5));
/// assert_eq!(parse_f64("4"), Some(4.0));
/// assert_eq!(parse_f64("-1.5e3"), Some(-1500.0));
/// assert_eq!(parse_f64(".25"), Some(0.25));
/// assert!(parse_f64("inf").is_some_and(f64::is_infinite));
/// assert_eq!(parse_f64("1.5s"), None);
/// assert_eq!(parse_f64(""), None);
/// ```
pub fn parse_f64(s: &str) -> Option<f64> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
        f64::INFINITY
    } else if rest.eq_ignore_ascii_case("nan") {
        f64::NAN
    } else {
        parse_digits(rest.as_bytes())?
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// The most significant digits kept: 10^19 - 1 fits a `u64`.
const MAX_DIGITS: u32 = 19;

/// `DIGITS[.DIGITS][(e|E)[+|-]DIGITS]`, unsigned.
fn parse_digits(s: &[u8]) -> Option<f64> {
    let mut mantissa: u64 = 0;
    let mut kept = 0u32; // significant digits in `mantissa`
    let mut exponent: i64 = 0; // decimal exponent applied to `mantissa`
    let mut digits = 0usize; // digits seen in the mantissa part, leading zeros included
    let mut i = 0;
    let mut seen_point = false;
    while i < s.len() {
        match s[i] {
            b'0'..=b'9' => {
                digits += 1;
                let d = u64::from(s[i] - b'0');
                if kept < MAX_DIGITS {
                    if mantissa > 0 || d > 0 {
                        kept += 1;
                    }
                    mantissa = mantissa * 10 + d;
                    if seen_point {
                        exponent -= 1;
                    }
                } else if !seen_point {
                    exponent += 1; // a dropped digit before the point still counts tens
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if i < s.len() {
        if !matches!(s[i], b'e' | b'E') {
            return None;
        }
        let exp = &s[i + 1..];
        let (sign, exp) = match exp.first() {
            Some(b'-') => (-1, &exp[1..]),
            Some(b'+') => (1, &exp[1..]),
            _ => (1, exp),
        };
        if exp.is_empty() || !exp.iter().all(u8::is_ascii_digit) {
            return None;
        }
        // Saturating: 10^±100,000 is 0 or infinity for an f64 either way.
        let value = exp
            .iter()
            .fold(0i64, |n, d| (n * 10 + i64::from(d - b'0')).min(100_000));
        exponent += sign * value;
    }
    Some(scale(mantissa as f64, exponent))
}

/// `value * 10^exponent`: one exact power and one rounding within ±22 (the fast path), repeated
/// steps beyond.
fn scale(mut value: f64, mut exponent: i64) -> f64 {
    if value == 0.0 {
        return 0.0;
    }
    while exponent > 22 {
        value *= 1e22;
        exponent -= 22;
        if value.is_infinite() {
            return value;
        }
    }
    while exponent < -22 {
        value /= 1e22;
        exponent += 22;
        if value == 0.0 {
            return value;
        }
    }
    let power = POWERS_OF_TEN[exponent.unsigned_abs() as usize];
    if exponent >= 0 {
        value * power
    } else {
        value / power
    }
}

/// 10^0 to 10^22: every one exact in an f64.
const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A duration in seconds as a decimal: `30`, `0.5`, `1.25`, `0.000001`.
///
/// ```
/// use chatnode::decimal::Seconds;
/// use std::time::Duration;
/// assert_eq!(Seconds(Duration::from_secs(90)).to_string(), "90");
/// assert_eq!(Seconds(Duration::from_millis(1500)).to_string(), "1.5");
/// assert_eq!(Seconds(Duration::from_micros(1)).to_string(), "0.000001");
/// ```
pub struct Seconds(pub Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, nanos) = (self.0.as_secs(), self.0.subsec_nanos());
        if nanos == 0 {
            return write!(f, "{secs}");
        }
        let digits = format!("{nanos:09}");
        write!(f, "{secs}.{}", digits.trim_end_matches('0'))
    }
}

/// `value / unit` with `places` decimals, rounded half up: `Fixed::new(1_250_000, 1_000_000, 2)`
/// prints `1.25`.
///
/// ```
/// use chatnode::decimal::Fixed;
/// // 1,234,567 ns in milliseconds, one decimal.
/// assert_eq!(Fixed::new(1_234_567, 1_000_000, 1).to_string(), "1.2");
/// assert_eq!(Fixed::new(1_250_000, 1_000_000, 1).to_string(), "1.3");
/// assert_eq!(Fixed::new(7, 1, 2).to_string(), "7.00");
/// ```
pub struct Fixed {
    value: u128,
    unit: u128,
    places: u32,
}

impl Fixed {
    /// `value / unit`, printed with `places` decimals (at most 9). `unit` must not be 0.
    pub fn new(value: u128, unit: u128, places: u32) -> Fixed {
        Fixed {
            value,
            unit: unit.max(1),
            places: places.min(9),
        }
    }
}

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scale = 10u128.pow(self.places);
        let scaled = (self.value.saturating_mul(scale).saturating_mul(2) / self.unit).div_ceil(2);
        let (whole, fraction) = (scaled / scale, scaled % scale);
        if self.places == 0 {
            return write!(f, "{whole}");
        }
        write!(
            f,
            "{whole}.{fraction:0width$}",
            width = self.places as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_f64_agrees_with_std() {
        let inputs = [
            "0",
            "4",
            "0.5",
            "1.5",
            "30",
            "500",
            "0.001",
            "2.25",
            "1e3",
            "1E-3",
            "+4",
            "-0.5",
            ".5",
            "5.",
            "007",
            "0.3",
            "1.3",
            "86400",
            "999999999",
            "123456.789",
            "1e22",
            "1e-22",
            "3.14159265358979",
            "0.1",
            "0.2",
            "0.7",
            "12.34e1",
            "inf",
            "-inf",
            "Infinity",
            "NaN",
            "1e400",
            "1e-400",
            "0e5",
            "00.000",
            "1000000",
            "1000001",
        ];
        for s in inputs {
            let ours = parse_f64(s).unwrap_or_else(|| panic!("{s} refused"));
            let std = s.parse::<f64>().unwrap();
            assert!(
                ours == std || (ours.is_nan() && std.is_nan()),
                "{s}: {ours} != {std}"
            );
        }
        for s in [
            "", "-", "+", ".", "e5", "1e", "1e+", "1.5s", " 1", "1 ", "1..2", "1.2.3", "0x10",
            "--1", "in", "nana", "1,5",
        ] {
            assert_eq!(parse_f64(s), None, "{s:?} accepted");
            assert!(s.parse::<f64>().is_err(), "{s:?}: std accepts it");
        }
        // Past the fast path (more digits than an f64 holds): within a few units in the last
        // place; past 19 digits the rest only scale.
        for s in [
            "123456789012345678901234",
            "0.12345678901234567890123",
            "9007199254740993",
        ] {
            let (ours, std) = (parse_f64(s).unwrap(), s.parse::<f64>().unwrap());
            assert!(((ours - std) / std).abs() < 1e-15, "{s}: {ours} != {std}");
        }
    }

    #[test]
    fn seconds_print_as_f64_display_does() {
        for d in [
            Duration::from_secs(0),
            Duration::from_secs(90),
            Duration::from_millis(500),
            Duration::from_millis(1500),
            Duration::from_millis(2250),
            Duration::from_micros(1),
            Duration::from_secs(86_400 * 30),
            Duration::from_secs_f64(0.3),
            Duration::from_secs_f64(1.3),
            Duration::from_secs_f64(0.001),
        ] {
            assert_eq!(Seconds(d).to_string(), d.as_secs_f64().to_string(), "{d:?}");
        }
    }

    #[test]
    fn fixed_rounds_half_up() {
        assert_eq!(Fixed::new(0, 1_000_000, 1).to_string(), "0.0");
        assert_eq!(Fixed::new(49_999, 1_000_000, 1).to_string(), "0.0");
        assert_eq!(Fixed::new(50_000, 1_000_000, 1).to_string(), "0.1");
        assert_eq!(Fixed::new(12_345_678, 1_000_000, 2).to_string(), "12.35");
        assert_eq!(Fixed::new(999_999, 1_000_000, 2).to_string(), "1.00");
        assert_eq!(Fixed::new(5, 2, 0).to_string(), "3");
        // Away from ties, the same digits as a float printer (which rounds 0.25 to 0.2).
        for ns in [0u128, 1, 1_234_567, 9_999_999_999] {
            assert_eq!(
                Fixed::new(ns, 1_000_000, 1).to_string(),
                format!("{:.1}", ns as f64 / 1e6),
                "{ns}"
            );
        }
    }
}
