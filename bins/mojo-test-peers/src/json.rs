//! The host's result lines: one JSON object per line, formatted exactly as
//! `rm_host.cc`'s `Json` helper formats them (`scenario`, `label`, `pass`
//! first, then the figures in the order added; numbers as C's `%.6g`).
//!
//! One difference: strings are escaped (the reference writes them raw, which
//! only matters for a `--label` or path containing `"` or `\`).

use std::fmt::Write as _;

/// One result line being built.
#[derive(Debug, Clone)]
pub struct JsonLine {
    text: String,
}

impl JsonLine {
    /// Starts `{"scenario":..,"label":..,"pass":..`.
    pub fn new(scenario: &str, label: &str, pass: bool) -> Self {
        let mut line = Self {
            text: String::from("{"),
        };
        line.str("scenario", scenario);
        line.str("label", label);
        line.bool("pass", pass);
        line
    }

    fn key(&mut self, key: &str) {
        if self.text.len() > 1 {
            self.text.push(',');
        }
        push_json_string(&mut self.text, key);
        self.text.push(':');
    }

    /// Adds a string field.
    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        push_json_string(&mut self.text, value);
        self
    }

    /// Adds an integer field.
    pub fn int(&mut self, key: &str, value: i128) -> &mut Self {
        self.key(key);
        let _ = write!(self.text, "{value}");
        self
    }

    /// Adds a number field formatted as `%.6g`.
    pub fn num(&mut self, key: &str, value: f64) -> &mut Self {
        self.key(key);
        self.text.push_str(&format_g6(value));
        self
    }

    /// Adds a boolean field.
    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key);
        self.text.push_str(if value { "true" } else { "false" });
        self
    }

    /// Adds a field whose value is already JSON (an array).
    pub fn raw(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        self.text.push_str(value);
        self
    }

    /// Adds `"error":..` if `error` is not empty (the reference's habit).
    pub fn error(&mut self, error: &str) -> &mut Self {
        if !error.is_empty() {
            self.str("error", error);
        }
        self
    }

    /// The finished line, without the newline.
    pub fn finish(&self) -> String {
        format!("{}}}", self.text)
    }
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// C's `printf("%.6g", v)`.
pub fn format_g6(v: f64) -> String {
    const P: i32 = 6;
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf" } else { "inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // The exponent after rounding to P significant digits decides the style.
    let e_form = format!("{:.*e}", (P - 1) as usize, v);
    let (mantissa, exp) = e_form.split_once('e').unwrap_or((&e_form, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..P).contains(&exp) {
        let decimals = (P - 1 - exp) as usize;
        strip_zeros(format!("{v:.decimals$}"))
    } else {
        let mantissa = strip_zeros(mantissa.to_string());
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

fn strip_zeros(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g6_matches_printf() {
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (100.0, "100"),
            (0.5, "0.5"),
            (1.0 / 3.0, "0.333333"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (999999.5, "1e+06"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (12.345678, "12.3457"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
            (3.0e-300, "3e-300"),
            (f64::INFINITY, "inf"),
        ];
        for (v, want) in cases {
            assert_eq!(format_g6(v), want, "{v}");
        }
    }

    #[test]
    fn line_layout() {
        let mut j = JsonLine::new("connect", "proxy", true);
        j.num("first_rtt_ms", 1.5)
            .int("n", -1)
            .bool("b", false)
            .raw("a", "[1,2]")
            .error("");
        assert_eq!(
            j.finish(),
            r#"{"scenario":"connect","label":"proxy","pass":true,"first_rtt_ms":1.5,"n":-1,"b":false,"a":[1,2]}"#
        );
        let mut j = JsonLine::new("x", "a\"b\\", false);
        j.error("timeout");
        assert_eq!(
            j.finish(),
            r#"{"scenario":"x","label":"a\"b\\","pass":false,"error":"timeout"}"#
        );
    }
}
