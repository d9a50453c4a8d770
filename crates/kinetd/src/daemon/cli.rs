//! xinetd's command line: single-dash long options.
//!
//! Unknown options are ignored as xinetd ignores them (Debian's init script passes
//! options a build may not know), so a Dockerfile's `CMD ["xinetd", "-dontfork"]` keeps
//! working with only the program name changed. A word that is not an option is an error.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

/// The default configuration file, xinetd's.
pub const DEFAULT_CONFIG: &str = "/etc/xinetd.conf";

/// The options, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub config: PathBuf,
    /// `-d`: foreground, with debug messages.
    pub debug: bool,
    /// `-dontfork`: stay in the foreground.
    pub dont_fork: bool,
    /// `-stayalive`: keep running with no service.
    pub stay_alive: bool,
    pub pidfile: Option<PathBuf>,
    pub filelog: Option<PathBuf>,
    pub syslog: Option<String>,
    /// `-limit N`: the most challenge processes running at once, over all services.
    pub limit: Option<u32>,
    pub version: bool,
    /// `-h`, `-help` or `--help`: print the usage text. xinetd ignores these as unknown
    /// options and starts; a first-time user asking for help should not get a daemon.
    pub help: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config: PathBuf::from(DEFAULT_CONFIG),
            debug: false,
            dont_fork: false,
            stay_alive: false,
            pidfile: None,
            filelog: None,
            syslog: None,
            limit: None,
            version: false,
            help: false,
        }
    }
}

impl Options {
    /// Whether the daemon stays attached to its terminal.
    pub fn foreground(&self) -> bool {
        self.debug || self.dont_fork
    }

    /// Whether the daemon keeps running when no service is available (`-dontfork`
    /// implies it, as in xinetd).
    pub fn keeps_running_without_services(&self) -> bool {
        self.stay_alive || self.dont_fork
    }
}

/// A command line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    MissingValue { option: String },
    BadValue { option: String, value: String },
    NotAnOption { word: String },
    BothLogs,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::MissingValue { option } => write!(f, "option {option} needs a value"),
            CliError::BadValue { option, value } => {
                write!(f, "option {option}: invalid value {value:?}")
            }
            CliError::NotAnOption { word } => write!(f, "unexpected argument {word:?}"),
            CliError::BothLogs => f.write_str("-filelog and -syslog cannot be used together"),
        }
    }
}

impl std::error::Error for CliError {}

pub const USAGE: &str = "\
Usage: kinetd [-f config_file] [-dontfork] [-d] [-stayalive] [-pidfile pid_file]
              [-filelog file | -syslog facility] [-limit proc_limit] [-version]
       kinetd check [options] [config_file]
       kinetd policy <command> ...";

/// Options xinetd knows that take a value and that kinetd accepts and ignores; their value
/// must be skipped, or it would read as a stray argument.
const IGNORED_WITH_VALUE: &[&str] = &["-logprocs", "-cc", "-shutdownprocs"];

pub fn parse(args: &[OsString]) -> Result<Options, CliError> {
    let mut options = Options::default();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let text = word.to_string_lossy();
        if !text.starts_with('-') || text == "-" {
            return Err(CliError::NotAnOption {
                word: text.into_owned(),
            });
        }
        let mut value = |option: &str| -> Result<&OsStr, CliError> {
            words
                .next()
                .map(OsString::as_os_str)
                .ok_or_else(|| CliError::MissingValue {
                    option: option.to_owned(),
                })
        };
        match text.as_ref() {
            "-f" => options.config = PathBuf::from(value("-f")?),
            "-d" => options.debug = true,
            "-dontfork" => options.dont_fork = true,
            "-stayalive" => options.stay_alive = true,
            "-pidfile" => options.pidfile = Some(PathBuf::from(value("-pidfile")?)),
            "-filelog" => options.filelog = Some(PathBuf::from(value("-filelog")?)),
            "-syslog" => options.syslog = Some(value("-syslog")?.to_string_lossy().into_owned()),
            "-limit" => {
                let raw = value("-limit")?.to_string_lossy().into_owned();
                let limit = raw.parse().map_err(|_| CliError::BadValue {
                    option: "-limit".to_owned(),
                    value: raw.clone(),
                })?;
                options.limit = Some(limit);
            }
            "-version" => options.version = true,
            "-h" | "-help" | "--help" => options.help = true,
            option if IGNORED_WITH_VALUE.contains(&option) => {
                value(option)?;
            }
            // Everything else, e.g. -inetd_compat, -reuse, -inetd_ipv6: ignored.
            _ => {}
        }
    }
    if options.filelog.is_some() && options.syslog.is_some() {
        return Err(CliError::BothLogs);
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn no_arguments_read_the_default_config_and_daemonize() {
        let options = parse(&[]).unwrap();
        assert_eq!(options.config, PathBuf::from("/etc/xinetd.conf"));
        assert!(!options.foreground());
        assert!(!options.keeps_running_without_services());
    }

    #[test]
    fn docker_command_line_stays_in_the_foreground_and_alive() {
        let options = parse(&args(&["-dontfork"])).unwrap();
        assert!(options.foreground());
        assert!(options.keeps_running_without_services());
    }

    #[test]
    fn every_option_with_a_value_is_read() {
        let options = parse(&args(&[
            "-f",
            "/c.conf",
            "-pidfile",
            "/p",
            "-filelog",
            "/l",
            "-limit",
            "12",
            "-stayalive",
        ]))
        .unwrap();
        assert_eq!(options.config, PathBuf::from("/c.conf"));
        assert_eq!(options.pidfile, Some(PathBuf::from("/p")));
        assert_eq!(options.filelog, Some(PathBuf::from("/l")));
        assert_eq!(options.limit, Some(12));
        assert!(options.stay_alive);
    }

    #[test]
    fn unknown_options_are_ignored_like_xinetd() {
        let options = parse(&args(&["-inetd_compat", "-reuse", "-logprocs", "3", "-d"])).unwrap();
        assert!(options.debug);
    }

    #[test]
    fn help_options_ask_for_the_usage_text() {
        for word in ["-h", "-help", "--help"] {
            assert!(parse(&args(&["-dontfork", word])).unwrap().help, "{word}");
        }
        assert!(!parse(&args(&["-dontfork"])).unwrap().help);
    }

    #[test]
    fn stray_word_is_an_error() {
        let err = parse(&args(&["-d", "extra"])).unwrap_err();
        assert_eq!(
            err,
            CliError::NotAnOption {
                word: "extra".into()
            }
        );
    }

    #[test]
    fn missing_value_names_the_option() {
        let err = parse(&args(&["-f"])).unwrap_err();
        assert_eq!(err.to_string(), "option -f needs a value");
    }

    #[test]
    fn non_numeric_limit_is_an_error() {
        assert!(matches!(
            parse(&args(&["-limit", "many"])),
            Err(CliError::BadValue { .. })
        ));
    }

    #[test]
    fn filelog_and_syslog_exclude_each_other() {
        let err = parse(&args(&["-filelog", "/x", "-syslog", "daemon"])).unwrap_err();
        assert_eq!(err, CliError::BothLogs);
    }
}
