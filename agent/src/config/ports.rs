//! Port selections as Beyla writes them: `80`, `80,443`, `8000-8090`, or a mix.

use std::fmt;
use std::ops::RangeInclusive;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSet(Vec<RangeInclusive<u16>>);

impl PortSet {
    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|r| r.contains(&port))
    }

    /// Parses the text; the error is what was expected, for the caller to place.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        const EXPECTED: &str =
            "a port from 1 to 65535, a comma-separated list such as 80,443, or a range such as 8000-8090";
        let port = |s: &str| -> Result<u16, &'static str> {
            match s.trim().parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(EXPECTED),
            }
        };
        let mut ranges = Vec::new();
        for item in text.split(',') {
            let range = match item.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (port(lo)?, port(hi)?);
                    if lo > hi {
                        return Err(
                            "a range whose first port is not above its last, such as 8000-8090",
                        );
                    }
                    lo..=hi
                }
                None => {
                    let p = port(item)?;
                    p..=p
                }
            };
            ranges.push(range);
        }
        Ok(Self(ranges))
    }
}

impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.start() == r.end() {
                write!(f, "{}", r.start())?;
            } else {
                write!(f, "{}-{}", r.start(), r.end())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let set = PortSet::parse("80, 443,8000-8090").unwrap();
        assert!(set.contains(80) && set.contains(443) && set.contains(8000) && set.contains(8090));
        assert!(!set.contains(8091) && !set.contains(81));
        assert_eq!(set.to_string(), "80,443,8000-8090");
    }

    #[test]
    fn refused_forms() {
        for bad in [
            "80-", "abc", "70000", "", "0", "-80", "90-80", "80,,443", "1-2-3",
        ] {
            assert!(PortSet::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
