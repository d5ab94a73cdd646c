//! The settings of `hermod serve` and where they come from: a flag, else
//! its `HERMOD_*` environment variable (both read by clap), else the TOML
//! file named by `--config`, else the default. [`Settings::resolve`] layers
//! them; [`Settings::layer`] does it without touching the file system or the
//! environment, so the precedence is unit-tested. An unknown key in the file
//! is an error that names it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hermod_http::Limits;
use serde::Deserialize;

/// Written after `--help`: the config file's shape.
const CONFIG_HELP: &str = "\
Every setting is taken from, in order: its flag, its HERMOD_* environment \
variable, the --config file, the default. RUST_LOG is used when neither \
--log-level nor HERMOD_LOG_LEVEL is set.

The --config file is TOML. Keys are the flag names with underscores; the \
limits (max_*) go in a [limits] table. Relative paths in the file are taken \
from the file's own directory. An unknown key is an error.

    data_dir = \"/var/lib/hermod\"
    http = \"0.0.0.0:9080\"
    definitions = \"definitions.toml\"
    log_format = \"json\"        # or \"human\"
    log_level = \"info,hermod_core=debug\"
    tick_ms = 1000
    trace_capacity = 100000
    shutdown_grace_ms = 30000

    [limits]
    max_body_bytes = 16777216
    max_message_bytes = 1048576
    max_batch = 1000
    max_connections = 1024
    max_wait_ms = 20000
    max_receive = 1000

The --definitions file (TOML, or JSON if it ends in .json) lists topics, \
queues, exchanges, subscriptions and bindings to create at start; what \
exists with the same settings is left alone, what exists with other settings \
stops the start:

    [topics.orders]
    partitions = 3
    [queues.jobs]
    visibility_timeout_ms = 5000
    [exchanges.events]
    kind = \"topic\"
    [[subscriptions]]
    topic = \"orders\"
    name = \"billing\"
    config = { mode = \"stream\" }
    [[bindings]]
    exchange = \"events\"
    destination = \"orders\"
    key = \"order.*\"";

/// `hermod serve`'s flags. Every one is optional here: what is not given
/// falls through to the environment, the config file and the default.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(after_long_help = CONFIG_HELP)]
pub struct ServeFlags {
    /// Directory holding the broker's data [default: ./hermod-data]
    #[arg(long, env = "HERMOD_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address the HTTP API listens on; port 0 picks a free port [default: 127.0.0.1:9080]
    #[arg(long, env = "HERMOD_HTTP", value_name = "HOST:PORT")]
    pub http: Option<String>,
    /// TOML file of settings (see below)
    #[arg(long, env = "HERMOD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Topics, queues, exchanges, subscriptions and bindings to create at start (TOML or JSON)
    #[arg(long, env = "HERMOD_DEFINITIONS", value_name = "FILE")]
    pub definitions: Option<PathBuf>,
    /// Log lines for people or one JSON object per line, on stderr [default: human]
    #[arg(long, env = "HERMOD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, as RUST_LOG: `info`, `warn,hermod_core=debug` [default: info]
    #[arg(long, env = "HERMOD_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Largest request body [default: 16777216]
    #[arg(long, env = "HERMOD_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest message value [default: 1048576]
    #[arg(long, env = "HERMOD_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Most messages in one publish [default: 1000]
    #[arg(long, env = "HERMOD_MAX_BATCH", value_name = "N")]
    pub max_batch: Option<usize>,
    /// Most open connections; more are answered 503 and closed [default: 1024]
    #[arg(long, env = "HERMOD_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Longest long-poll wait [default: 20000]
    #[arg(long, env = "HERMOD_MAX_WAIT_MS", value_name = "MS")]
    pub max_wait_ms: Option<u64>,
    /// Most messages one receive or poll returns [default: 1000]
    #[arg(long, env = "HERMOD_MAX_RECEIVE", value_name = "N")]
    pub max_receive: Option<usize>,
    /// Interval of the broker's upkeep (retention, expired leases, snapshots) [default: 1000]
    #[arg(long, env = "HERMOD_TICK_MS", value_name = "MS")]
    pub tick_ms: Option<u64>,
    /// Messages whose traces are kept in memory; 0 keeps none [default: 100000]
    #[arg(long, env = "HERMOD_TRACE_CAPACITY", value_name = "N")]
    pub trace_capacity: Option<usize>,
    /// Longest wait for in-flight requests at shutdown [default: 30000]
    #[arg(long, env = "HERMOD_SHUTDOWN_GRACE_MS", value_name = "MS")]
    pub shutdown_grace_ms: Option<u64>,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// The settings in force, every layer applied and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub http: String,
    pub definitions: Option<PathBuf>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub limits: Limits,
    pub tick_ms: u64,
    pub trace_capacity: usize,
    pub shutdown_grace_ms: u64,
}

/// Longest upkeep interval: an hour (retention and leases would lag).
pub const MAX_TICK_MS: u64 = 3_600_000;
/// Most messages whose traces may be kept (each costs some hundred bytes).
pub const MAX_TRACE_CAPACITY: usize = 10_000_000;
/// Most connections the listener may be set to hold.
pub const MAX_CONNECTIONS: usize = 1_000_000;

impl Settings {
    /// Reads the config file (if any) and `RUST_LOG`, and layers them under
    /// the flags and their environment variables.
    pub fn resolve(args: ServeFlags) -> anyhow::Result<Settings> {
        let file = match &args.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let rust_log = std::env::var("RUST_LOG").ok().filter(|s| !s.is_empty());
        Settings::layer(args, file, rust_log)
    }

    /// Flag (or its environment variable) > file > default, then checks.
    fn layer(
        args: ServeFlags,
        file: FileConfig,
        rust_log: Option<String>,
    ) -> anyhow::Result<Settings> {
        let defaults = Limits::default();
        let limits = Limits {
            max_body_bytes: pick(
                args.max_body_bytes,
                file.limits.max_body_bytes,
                defaults.max_body_bytes,
            ),
            max_message_bytes: pick(
                args.max_message_bytes,
                file.limits.max_message_bytes,
                defaults.max_message_bytes,
            ),
            max_batch: pick(args.max_batch, file.limits.max_batch, defaults.max_batch),
            max_connections: pick(
                args.max_connections,
                file.limits.max_connections,
                defaults.max_connections,
            ),
            max_wait_ms: pick(
                args.max_wait_ms,
                file.limits.max_wait_ms,
                defaults.max_wait_ms,
            ),
            max_receive: pick(
                args.max_receive,
                file.limits.max_receive,
                defaults.max_receive,
            ),
        };
        let log_level = args
            .log_level
            .or(rust_log)
            .or(file.log_level)
            .unwrap_or_else(|| "info".to_owned());
        let settings = Settings {
            data_dir: pick(args.data_dir, file.data_dir, PathBuf::from("./hermod-data")),
            http: pick(args.http, file.http, "127.0.0.1:9080".to_owned()),
            definitions: args.definitions.or(file.definitions),
            log_format: pick(args.log_format, file.log_format, LogFormat::Human),
            log_level,
            limits,
            tick_ms: pick(args.tick_ms, file.tick_ms, 1_000),
            trace_capacity: pick(args.trace_capacity, file.trace_capacity, 100_000),
            shutdown_grace_ms: pick(args.shutdown_grace_ms, file.shutdown_grace_ms, 30_000),
        };
        settings.check()?;
        Ok(settings)
    }

    /// Refuses settings that cannot work, naming the setting.
    fn check(&self) -> anyhow::Result<()> {
        let l = &self.limits;
        at_least_one("max_body_bytes", l.max_body_bytes as u64)?;
        at_least_one("max_message_bytes", l.max_message_bytes as u64)?;
        at_least_one("max_batch", l.max_batch as u64)?;
        at_least_one("max_receive", l.max_receive as u64)?;
        in_range(
            "max_connections",
            l.max_connections as u64,
            1,
            MAX_CONNECTIONS as u64,
        )?;
        in_range("tick_ms", self.tick_ms, 1, MAX_TICK_MS)?;
        in_range(
            "trace_capacity",
            self.trace_capacity as u64,
            0,
            MAX_TRACE_CAPACITY as u64,
        )?;
        if self.data_dir.as_os_str().is_empty() {
            anyhow::bail!("data_dir is empty; name a directory");
        }
        Ok(())
    }
}

/// The config file's shape; every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    http: Option<String>,
    definitions: Option<PathBuf>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    tick_ms: Option<u64>,
    trace_capacity: Option<usize>,
    shutdown_grace_ms: Option<u64>,
    #[serde(default)]
    limits: FileLimits,
}

/// The config file's `[limits]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_body_bytes: Option<usize>,
    max_message_bytes: Option<usize>,
    max_batch: Option<usize>,
    max_connections: Option<usize>,
    max_wait_ms: Option<u64>,
    max_receive: Option<usize>,
}

/// Largest config file read: far more than any real one.
const MAX_CONFIG_FILE_BYTES: u64 = 1 << 20;

impl FileConfig {
    fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = read_small_file(path, MAX_CONFIG_FILE_BYTES)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut file = FileConfig::parse(&text)
            .with_context(|| format!("bad config file {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        file.data_dir = file.data_dir.map(|p| base.join(p));
        file.definitions = file.definitions.map(|p| base.join(p));
        Ok(file)
    }

    fn parse(text: &str) -> anyhow::Result<FileConfig> {
        toml::from_str(text).map_err(|e| {
            let message = e.to_string();
            if message.contains("unknown field `max_") {
                anyhow::anyhow!("{message}\nhint: limits (max_*) go in the [limits] table")
            } else {
                anyhow::anyhow!("{message}")
            }
        })
    }
}

/// Reads a text file, refusing one larger than `max_bytes`.
pub fn read_small_file(path: &Path, max_bytes: u64) -> anyhow::Result<String> {
    let len = std::fs::metadata(path)?.len();
    if len > max_bytes {
        anyhow::bail!("the file is {len} bytes; at most {max_bytes} are read");
    }
    Ok(std::fs::read_to_string(path)?)
}

fn pick<T>(flag: Option<T>, file: Option<T>, default: T) -> T {
    flag.or(file).unwrap_or(default)
}

fn at_least_one(name: &str, value: u64) -> anyhow::Result<()> {
    in_range(name, value, 1, u64::MAX)
}

fn in_range(name: &str, value: u64, min: u64, max: u64) -> anyhow::Result<()> {
    if value < min || value > max {
        anyhow::bail!("{name} is {value}; it must be from {min} to {max}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use clap::Parser;

    use super::*;

    /// Clap reads `HERMOD_*` while parsing, so tests that parse or set the
    /// environment take turns.
    static ENV: Mutex<()> = Mutex::new(());

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeFlags,
    }

    fn parse(flags: &[&str]) -> ServeFlags {
        let argv = std::iter::once("hermod").chain(flags.iter().copied());
        Cli::try_parse_from(argv).unwrap().args
    }

    /// Parses with some environment variables set, then removes them.
    fn parse_with_env(flags: &[&str], env: &[(&str, &str)]) -> ServeFlags {
        let _turn = ENV.lock().unwrap_or_else(|e| e.into_inner());
        for (k, v) in env {
            std::env::set_var(k, v);
        }
        let args = parse(flags);
        for (k, _) in env {
            std::env::remove_var(k);
        }
        args
    }

    fn file(text: &str) -> FileConfig {
        FileConfig::parse(text).unwrap()
    }

    #[test]
    fn defaults_without_flags_env_or_file() {
        let args = parse_with_env(&[], &[]);
        let s = Settings::layer(args, FileConfig::default(), None).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("./hermod-data"));
        assert_eq!(s.http, "127.0.0.1:9080");
        assert_eq!(s.log_format, LogFormat::Human);
        assert_eq!(s.log_level, "info");
        assert_eq!(s.limits, Limits::default());
        assert_eq!(s.tick_ms, 1_000);
        assert_eq!(s.trace_capacity, 100_000);
        assert_eq!(s.definitions, None);
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let toml = "http = \"127.0.0.1:1\"\ntick_ms = 7\n[limits]\nmax_batch = 1\nmax_receive = 1\nmax_wait_ms = 1\n";
        let env = [("HERMOD_MAX_BATCH", "2"), ("HERMOD_MAX_RECEIVE", "2")];
        let args = parse_with_env(&["--max-batch", "3"], &env);
        let s = Settings::layer(args, file(toml), None).unwrap();
        assert_eq!(s.limits.max_batch, 3, "flag over env and file");
        assert_eq!(s.limits.max_receive, 2, "env over file");
        assert_eq!(s.limits.max_wait_ms, 1, "file over default");
        assert_eq!(s.limits.max_body_bytes, Limits::default().max_body_bytes);
        assert_eq!(s.http, "127.0.0.1:1");
        assert_eq!(s.tick_ms, 7);
    }

    #[test]
    fn every_setting_has_an_env_variable() {
        let env = [
            ("HERMOD_DATA_DIR", "/d"),
            ("HERMOD_HTTP", "0.0.0.0:1"),
            ("HERMOD_DEFINITIONS", "defs.json"),
            ("HERMOD_LOG_FORMAT", "json"),
            ("HERMOD_LOG_LEVEL", "debug"),
            ("HERMOD_MAX_BODY_BYTES", "11"),
            ("HERMOD_MAX_MESSAGE_BYTES", "12"),
            ("HERMOD_MAX_BATCH", "13"),
            ("HERMOD_MAX_CONNECTIONS", "14"),
            ("HERMOD_MAX_WAIT_MS", "15"),
            ("HERMOD_MAX_RECEIVE", "16"),
            ("HERMOD_TICK_MS", "17"),
            ("HERMOD_TRACE_CAPACITY", "18"),
            ("HERMOD_SHUTDOWN_GRACE_MS", "19"),
        ];
        let args = parse_with_env(&[], &env);
        let s = Settings::layer(args, FileConfig::default(), None).unwrap();
        let expected = Settings {
            data_dir: PathBuf::from("/d"),
            http: "0.0.0.0:1".to_owned(),
            definitions: Some(PathBuf::from("defs.json")),
            log_format: LogFormat::Json,
            log_level: "debug".to_owned(),
            limits: Limits {
                max_body_bytes: 11,
                max_message_bytes: 12,
                max_batch: 13,
                max_connections: 14,
                max_wait_ms: 15,
                max_receive: 16,
            },
            tick_ms: 17,
            trace_capacity: 18,
            shutdown_grace_ms: 19,
        };
        assert_eq!(s, expected);
    }

    #[test]
    fn log_level_flag_then_rust_log_then_file() {
        let toml = file("log_level = \"warn\"");
        let from_flag = parse_with_env(&["--log-level", "debug"], &[]);
        let s = Settings::layer(from_flag, toml, Some("trace".into())).unwrap();
        assert_eq!(s.log_level, "debug");
        let s = Settings::layer(
            ServeFlags::default(),
            file("log_level = \"warn\""),
            Some("trace".into()),
        );
        assert_eq!(s.unwrap().log_level, "trace");
        let s = Settings::layer(ServeFlags::default(), file("log_level = \"warn\""), None);
        assert_eq!(s.unwrap().log_level, "warn");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = FileConfig::parse("htp = \"127.0.0.1:1\"").unwrap_err();
        assert!(format!("{e:#}").contains("`htp`"), "{e:#}");
        let e = FileConfig::parse("[limits]\nmax_batches = 1").unwrap_err();
        assert!(format!("{e:#}").contains("`max_batches`"), "{e:#}");
    }

    #[test]
    fn limit_at_top_level_gets_a_hint() {
        let e = FileConfig::parse("max_batch = 1").unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("`max_batch`") && text.contains("[limits]"),
            "{text}"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let e = FileConfig::parse("tick_ms = \"soon\"").unwrap_err();
        assert!(format!("{e:#}").contains("tick_ms"), "{e:#}");
        let e = FileConfig::parse("log_format = \"xml\"").unwrap_err();
        assert!(format!("{e:#}").contains("xml"), "{e:#}");
        assert!(FileConfig::parse("data_dir = ").is_err());
        let zero = Settings::layer(
            ServeFlags::default(),
            file("[limits]\nmax_connections = 0"),
            None,
        );
        assert!(zero.unwrap_err().to_string().contains("max_connections"));
        let zero = Settings::layer(ServeFlags::default(), file("tick_ms = 0"), None);
        assert!(zero.unwrap_err().to_string().contains("tick_ms"));
    }

    #[test]
    fn file_paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hermod.toml");
        std::fs::write(
            &path,
            "data_dir = \"data\"\ndefinitions = \"/abs/defs.toml\"",
        )
        .unwrap();
        let f = FileConfig::load(&path).unwrap();
        assert_eq!(f.data_dir, Some(dir.path().join("data")));
        assert_eq!(f.definitions, Some(PathBuf::from("/abs/defs.toml")));
    }

    #[test]
    fn missing_file_is_named() {
        let args = ServeFlags {
            config: Some(PathBuf::from("/nonexistent/hermod.toml")),
            ..ServeFlags::default()
        };
        let e = Settings::resolve(args).unwrap_err();
        assert!(
            format!("{e:#}").contains("/nonexistent/hermod.toml"),
            "{e:#}"
        );
    }
}
