//! The `--name=value` / `--name value` switches of the xtask subcommands,
//! read one at a time (the few subcommands do not need a parser crate).

/// Reads `args` as switches: each `next` gives a switch's name and, through
/// [`Flags::value`], its value (inline after `=`, or the next argument).
pub(crate) struct Flags<'a> {
    args: std::slice::Iter<'a, String>,
    inline: Option<String>,
    name: String,
}

impl<'a> Flags<'a> {
    pub(crate) fn new(args: &'a [String]) -> Self {
        Self {
            args: args.iter(),
            inline: None,
            name: String::new(),
        }
    }

    /// The next switch's name, or `None` at the end.
    pub(crate) fn next_name(&mut self) -> Option<String> {
        let arg = self.args.next()?;
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        self.inline = inline;
        self.name = name.clone();
        Some(name)
    }

    /// The value written after `=`, if any (for switches whose value is
    /// optional).
    pub(crate) fn inline(&self) -> Option<&str> {
        self.inline.as_deref()
    }

    /// The current switch's value: inline, or else the next argument.
    pub(crate) fn value(&mut self) -> Result<String, String> {
        self.inline
            .take()
            .or_else(|| self.args.next().cloned())
            .ok_or_else(|| format!("{} needs a value", self.name))
    }

    /// The current switch's value as a positive number (`_` allowed as a
    /// digit separator).
    pub(crate) fn positive<T: std::str::FromStr + PartialOrd + Default>(
        &mut self,
    ) -> Result<T, String> {
        let v = self.value()?;
        v.replace('_', "")
            .parse()
            .ok()
            .filter(|n| *n > T::default())
            .ok_or_else(|| format!("{}={v}: expected a positive number", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn values_inline_or_next_and_positive_numbers() {
        let a = args(&[
            "--json=x",
            "--runs",
            "3",
            "--quick",
            "--n=1_000",
            "--bad=0",
            "--last",
        ]);
        let mut f = Flags::new(&a);
        assert_eq!(f.next_name().as_deref(), Some("--json"));
        assert_eq!(f.value().as_deref(), Ok("x"));
        assert_eq!(f.next_name().as_deref(), Some("--runs"));
        assert_eq!(f.positive::<usize>(), Ok(3));
        assert_eq!(f.next_name().as_deref(), Some("--quick"));
        assert_eq!(f.inline(), None);
        assert_eq!(f.next_name().as_deref(), Some("--n"));
        assert_eq!(f.positive::<u64>(), Ok(1000));
        assert_eq!(f.next_name().as_deref(), Some("--bad"));
        assert!(f.positive::<u64>().unwrap_err().contains("positive"));
        assert_eq!(f.next_name().as_deref(), Some("--last"));
        assert_eq!(f.value(), Err("--last needs a value".to_string()));
        assert_eq!(f.next_name(), None);
    }
}
