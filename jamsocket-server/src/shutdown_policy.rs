use crate::error::SettingError;
use std::str::FromStr;
use std::time::Duration;

/// What happens to a room when its last client leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownPolicy {
    /// The room lives until the server stops.
    Never,
    /// The room closes as soon as it is empty.
    Immediate,
    /// The room closes after being empty for this long; a client that joins in time finds the
    /// same state.
    After(Duration),
}

impl Default for ShutdownPolicy {
    /// A minute of grace, so a reloading browser finds its room again.
    fn default() -> Self {
        ShutdownPolicy::After(Duration::from_secs(60))
    }
}

impl FromStr for ShutdownPolicy {
    type Err = SettingError;

    /// Parses `never`, `immediate` or `<n>sec` (also `<n>s`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "never" => Ok(ShutdownPolicy::Never),
            "immediate" => Ok(ShutdownPolicy::Immediate),
            _ => s
                .strip_suffix("sec")
                .or_else(|| s.strip_suffix('s'))
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse().ok())
                .map(|n| ShutdownPolicy::After(Duration::from_secs(n)))
                .ok_or_else(|| SettingError::ShutdownPolicy(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_policies() {
        assert_eq!("never".parse(), Ok(ShutdownPolicy::Never));
        assert_eq!("immediate".parse(), Ok(ShutdownPolicy::Immediate));
        assert_eq!(
            "30sec".parse(),
            Ok(ShutdownPolicy::After(Duration::from_secs(30)))
        );
        assert_eq!(
            "5s".parse(),
            Ok(ShutdownPolicy::After(Duration::from_secs(5)))
        );
        for bad in [
            "",
            "sec",
            "-1sec",
            "1.5sec",
            "10",
            "forever",
            "99999999999999999999999sec",
        ] {
            let err = bad.parse::<ShutdownPolicy>().unwrap_err();
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
    }
}
