//! `jamsocket.toml`: per-service settings for `jamsocket dev` and `jamsocket build`.

use anyhow::{Context, Result};
use jamsocket_server::{RoomIdStrategy, ShutdownPolicy};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "jamsocket.toml";

/// The contents of `jamsocket.toml`. Every key is optional; unknown keys are an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Which package to build, in a workspace with several.
    pub package: Option<String>,
    /// A folder of static files to serve at `/`, relative to the crate.
    #[serde(rename = "static")]
    pub static_dir: Option<PathBuf>,
    /// Room-id strategy: `implicit`, `api`, `uuid`, `short`, `shortN`.
    pub rooms: Option<String>,
    /// Empty-room policy: `never`, `immediate`, `<n>sec`.
    pub shutdown_policy: Option<String>,
    /// Address to listen on (`jamsocket dev` defaults to `127.0.0.1`).
    pub host: Option<IpAddr>,
    /// Port to serve on.
    pub port: Option<u16>,
}

/// Validated settings from `jamsocket.toml`.
#[derive(Debug, Default)]
pub struct ServiceConfig {
    pub package: Option<String>,
    pub static_dir: Option<PathBuf>,
    pub rooms: Option<RoomIdStrategy>,
    pub shutdown_policy: Option<ShutdownPolicy>,
    pub host: Option<IpAddr>,
    pub port: Option<u16>,
}

impl ServiceConfig {
    /// Reads `jamsocket.toml` from `dir`, if there is one.
    pub fn load(dir: &Path) -> Result<ServiceConfig> {
        let path = dir.join(CONFIG_FILE);
        if !path.exists() {
            return Ok(ServiceConfig::default());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        ServiceConfig::parse(&text, dir).with_context(|| format!("invalid {}", path.display()))
    }

    fn parse(text: &str, dir: &Path) -> Result<ServiceConfig> {
        let config: Config = toml::from_str(text)?;
        Ok(ServiceConfig {
            package: config.package,
            static_dir: config.static_dir.map(|d| dir.join(d)),
            rooms: config.rooms.map(|r| r.parse()).transpose()?,
            shutdown_policy: config.shutdown_policy.map(|p| p.parse()).transpose()?,
            host: config.host,
            port: config.port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key() {
        let config = ServiceConfig::parse(
            "package = \"svc\"\nstatic = \"www\"\nrooms = \"short6\"\nshutdown-policy = \"10sec\"\nhost = \"0.0.0.0\"\nport = 9000\n",
            Path::new("/crate"),
        )
        .unwrap();
        assert_eq!(config.package.as_deref(), Some("svc"));
        assert_eq!(config.static_dir, Some(PathBuf::from("/crate/www")));
        assert_eq!(config.rooms, Some(RoomIdStrategy::Short(6)));
        assert_eq!(
            config.shutdown_policy,
            Some(ShutdownPolicy::After(std::time::Duration::from_secs(10)))
        );
        assert_eq!(config.host, Some(std::net::Ipv4Addr::UNSPECIFIED.into()));
        assert_eq!(config.port, Some(9000));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = ServiceConfig::parse("prot = 80\n", Path::new(".")).unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `prot`"),
            "{err:#}"
        );
        let err = ServiceConfig::parse("rooms = \"lots\"\n", Path::new(".")).unwrap_err();
        assert!(format!("{err:#}").contains("`lots`"), "{err:#}");
        let err = ServiceConfig::parse("host = \"localhost\"\n", Path::new(".")).unwrap_err();
        assert!(format!("{err:#}").contains("host"), "{err:#}");
    }
}
