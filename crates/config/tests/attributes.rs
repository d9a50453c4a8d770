//! Every attribute: accepted values and the typed value they give, rejected values and
//! the error that names them. Each table row is one line added to a working service.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use common::*;
use kinetd_config::{
    Flag, LogField, LogType, Origin, Protocol, Rlimit, Service, ServiceType, Severity, SocketType,
    TimeOfDay,
};

/// A row: the line added, and what the loaded service must then show.
type Check = fn(&Service) -> bool;

#[track_caller]
fn accepted(rows: &[(&str, Check)]) {
    for (line, check) in rows {
        let config = load_service(line);
        assert_runs(&config);
        assert!(check(only(&config)), "`{line}` gave {:#?}", only(&config));
    }
}

#[track_caller]
fn rejected(rows: &[(&str, &str)]) {
    for (line, needle) in rows {
        let config = load_service(line);
        assert_rejected(&config, needle);
        let error = config
            .diagnostics
            .iter()
            .find(|d| d.severity == Severity::Error && d.message.contains(needle))
            .expect("checked above");
        assert_eq!(
            error.location.line, EXTRA_LINE,
            "`{line}`: error on the wrong line"
        );
    }
}

#[test]
fn numeric_limits_accept_numbers_and_unlimited() {
    accepted(&[
        ("instances = 30", |s| s.instances == Some(30)),
        ("instances = UNLIMITED", |s| s.instances.is_none()),
        // Observed: xinetd accepts instances = 0.
        ("instances = 0", |s| s.instances == Some(0)),
        ("per_source = 10", |s| s.per_source == Some(10)),
        ("per_source = UNLIMITED", |s| s.per_source.is_none()),
        ("cps = 200 5", |s| {
            s.cps.max_per_second == 200 && s.cps.wait_seconds == 5
        }),
        ("max_load = 2.5", |s| s.max_load == Some(2.5)),
        ("nice = 18", |s| s.nice == Some(18)),
        ("nice = -5", |s| s.nice == Some(-5)),
        ("umask = 027", |s| s.umask == Some(0o27)),
        ("umask = 0", |s| s.umask == Some(0)),
    ]);
}

#[test]
fn numeric_limits_reject_bad_values() {
    rejected(&[
        (
            "instances = abc",
            "instances: 'abc' is not a whole number or UNLIMITED",
        ),
        ("instances = -1", "instances:"),
        ("instances = unlimited", "instances:"),
        ("per_source = 1.5", "per_source:"),
        ("cps = 10", "'cps' takes 2 values, found 1"),
        ("cps = 0 5", "cps: the rate must be at least 1"),
        ("cps = ten 5", "cps: 'ten' is not a whole number"),
        ("max_load = high", "max_load:"),
        ("max_load = -1", "max_load:"),
        ("nice = low", "nice:"),
        // Observed: xinetd rejects "umask = 0778" ("umask argument is invalid").
        ("umask = 0778", "umask:"),
        ("umask = 1777", "umask:"),
    ]);
}

#[test]
fn nice_beyond_the_kernel_range_is_clamped_with_a_warning() {
    // Observed: xinetd accepts nice = 30 (the kernel clamps it).
    let config = load_service("nice = 30");
    assert_eq!(only(&config).nice, Some(19));
    assert_reported(&config, Severity::Warning, "nice 30 is applied as 19");
}

#[test]
fn rlimits_take_sizes_counts_and_unlimited() {
    accepted(&[
        ("rlimit_as = 1024M", |s| {
            s.rlimits.address_space == Some(Rlimit::Value(1 << 30))
        }),
        // Observed: xinetd accepts a lower-case suffix.
        ("rlimit_as = 512m", |s| {
            s.rlimits.address_space == Some(Rlimit::Value(512 << 20))
        }),
        ("rlimit_as = UNLIMITED", |s| {
            s.rlimits.address_space == Some(Rlimit::Unlimited)
        }),
        ("rlimit_cpu = 20", |s| {
            s.rlimits.cpu == Some(Rlimit::Value(20))
        }),
        ("rlimit_data = 64K", |s| {
            s.rlimits.data == Some(Rlimit::Value(64 << 10))
        }),
        ("rlimit_rss = 100", |s| {
            s.rlimits.rss == Some(Rlimit::Value(100))
        }),
        ("rlimit_stack = 8M", |s| {
            s.rlimits.stack == Some(Rlimit::Value(8 << 20))
        }),
        ("rlimit_files = 64", |s| {
            s.rlimits.files == Some(Rlimit::Value(64))
        }),
        ("rlimit_files = UNLIMITED", |s| {
            s.rlimits.files == Some(Rlimit::Unlimited)
        }),
        // Observed: xinetd accepts a K suffix on rlimit_files.
        ("rlimit_files = 10K", |s| {
            s.rlimits.files == Some(Rlimit::Value(10240))
        }),
    ]);
}

#[test]
fn rlimits_reject_what_xinetd_rejects() {
    rejected(&[
        // Observed: "Address space limit is invalid: 1G".
        ("rlimit_as = 1G", "rlimit_as: '1G' is not a size"),
        // Observed: "CPU limit is invalid: 2K".
        ("rlimit_cpu = 2K", "rlimit_cpu:"),
        ("rlimit_stack = -1", "rlimit_stack:"),
        ("rlimit_files = many", "rlimit_files:"),
        ("rlimit_data = 1 2", "'rlimit_data' takes 1 value, found 2"),
    ]);
}

#[test]
fn socket_settings_are_typed() {
    accepted(&[
        ("flags = NODELAY KEEPALIVE", |s| {
            s.has_flag(Flag::NoDelay) && s.has_flag(Flag::KeepAlive) && !s.has_flag(Flag::Reuse)
        }),
        ("flags = REUSE", |s| s.has_flag(Flag::Reuse)),
        ("flags = IPv4", |s| s.has_flag(Flag::IPv4)),
        ("bind = 127.0.0.1", |s| {
            s.bind == Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        }),
        ("interface = 127.0.0.1", |s| {
            s.bind == Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        }),
        ("bind = ::1", |s| {
            s.bind == Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        }),
        ("v6only = yes", |s| s.v6only == Some(true)),
        ("v6only = no", |s| s.v6only == Some(false)),
        ("groups = yes", |s| {
            s.groups
                && s.credentials
                    .as_ref()
                    .is_some_and(|c| c.supplementary_gids.contains(&0))
        }),
        ("protocol = tcp", |s| s.protocol == Protocol::Tcp),
    ]);
    let config = load_service("");
    let service = only(&config);
    assert_eq!(service.bind, None);
    assert_eq!(service.v6only, None);
    assert_eq!(service.socket_type, SocketType::Stream);
    assert!(service.has_type(ServiceType::Unlisted));
}

#[test]
fn socket_settings_reject_bad_values() {
    rejected(&[
        ("flags = FAST", "flags: unknown flag 'FAST'"),
        ("bind = 999.1.1.1", "bind: cannot resolve '999.1.1.1'"),
        ("v6only = maybe", "v6only: expected 'yes' or 'no'"),
        ("groups = maybe", "groups: expected 'yes' or 'no'"),
        (
            "protocol = sctp",
            "protocol: kinetd serves tcp and udp only",
        ),
    ]);
    let config = load(&service_text("chal", 9999, "").replace("UNLISTED", "UNLISTED BOGUS"));
    assert_rejected(&config, "type: 'BOGUS' is not");
}

#[test]
fn yes_and_no_are_read_in_any_case_as_xinetd_reads_them() {
    // Observed: xinetd accepts `groups = YES`, `v6only = YES` and `disable = YES`.
    accepted(&[
        ("groups = YES", |s| s.groups),
        ("v6only = No", |s| s.v6only == Some(false)),
    ]);
    let config = load_service("disable = YES");
    assert_eq!(only(&config).status, kinetd_config::Status::DisabledBySelf);
}

#[test]
fn ipv4_and_ipv6_flags_together_mean_ipv6() {
    // Observed: "Service p will use IPv6 or fallback to IPv4".
    let config = load_service("flags = IPv4 IPv6");
    assert!(only(&config).is_enabled());
    assert!(only(&config).has_flag(Flag::IPv6) && !only(&config).has_flag(Flag::IPv4));
    assert_reported(
        &config,
        Severity::Warning,
        "flags IPv4 and IPv6 together: IPv6 is used",
    );
}

#[test]
fn a_bind_address_of_the_wrong_family_for_the_flags_is_an_error() {
    // Observed: with `bind = 127.0.0.1` and `flags = IPv6`, xinetd listens on every
    // address — the opposite of what the organizer asked for.
    let config = load_service("bind = 127.0.0.1\nflags = IPv6");
    assert_rejected(
        &config,
        "bind: '127.0.0.1' has no IPv6 address, which the flags ask for",
    );
}

#[test]
fn host_names_in_bind_are_resolved_with_the_family_the_flags_ask_for() {
    let config = load_service("bind = localhost\nflags = IPv4");
    assert_eq!(only(&config).bind, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
}

#[test]
fn user_and_group_resolve_names_and_numbers() {
    let config = load(&service_text("chal", 9999, "").replace("user = root", "user = nobody"));
    let credentials = only(&config).credentials.clone().expect("user resolved");
    assert_eq!(credentials.user_name.as_deref(), Some("nobody"));
    assert_eq!(credentials.uid, 65534);
    assert_eq!(
        credentials.gid, 65534,
        "the login group of nobody is nogroup"
    );
    assert!(
        credentials.supplementary_gids.is_empty(),
        "groups = no sets none"
    );

    // A number need not exist in /etc/passwd; xinetd uses it as the gid too.
    let config =
        load(&service_text("chal", 9999, "group = 0").replace("user = root", "user = 1234"));
    let credentials = only(&config).credentials.clone().expect("user resolved");
    assert_eq!(
        (credentials.uid, credentials.gid, credentials.user_name),
        (1234, 0, None)
    );

    let config = load(&service_text("chal", 9999, "").replace("user = root", "user = 1234"));
    assert_eq!(
        only(&config).credentials.as_ref().map(|c| c.gid),
        Some(1234)
    );

    let config = load(&service_text("chal", 9999, "").replace("user = root", "user = nosuchuser"));
    assert_rejected(&config, "user: unknown user 'nosuchuser'");
    rejected(&[("group = nosuchgroup", "group: unknown group 'nosuchgroup'")]);
}

#[test]
fn server_args_build_argv_from_the_servers_base_name() {
    // Observed: with server = /bin/cat, xinetd's child sees argv[0] = "cat".
    let config = load_service("server_args = --flag value");
    assert_eq!(only(&config).argv, ["chal", "--flag", "value"]);
    assert_eq!(only(&config).server, Some(PathBuf::from("/srv/chal")));

    let config = load_service("");
    assert_eq!(only(&config).argv, ["chal"]);

    let config = load_service("flags = NAMEINARGS\nserver_args = tcpd /srv/chal -v");
    assert_eq!(only(&config).argv, ["tcpd", "/srv/chal", "-v"]);
}

#[test]
fn quotes_in_server_args_are_passed_on_with_a_warning() {
    let config = load_service("server_args = \"hello world\"");
    assert_eq!(only(&config).argv, ["chal", "\"hello", "world\""]);
    assert_runs(&config);
    assert_reported(&config, Severity::Warning, "quotes are not special here");

    let config = load_service("server_args = --flag value");
    assert!(config.diagnostics.is_empty(), "{:?}", diagnostics(&config));
}

#[test]
fn server_args_and_nameinargs_reject_what_xinetd_rejects() {
    rejected(&[
        // Observed: "attribute server_args expects at least 1 value and none was given".
        (
            "server_args =",
            "server_args: an empty value is not allowed",
        ),
    ]);
    // Observed: "Must specify server args if using NAMEINARGS flag".
    let config = load_service("flags = NAMEINARGS");
    assert_rejected(&config, "NAMEINARGS needs server_args");
}

#[test]
fn a_server_that_is_not_executable_rejects_the_service() {
    let config = load(&service_text("chal", 9999, "").replace("/srv/chal", "/srv/missing"));
    assert_rejected(&config, "server: '/srv/missing' is not an executable file");
    let config = load(&service_text("chal", 9999, "").replace("/srv/chal", "/etc/banner_fail"));
    assert_rejected(&config, "is not an executable file");
}

#[test]
fn environment_settings_are_typed() {
    accepted(&[
        ("env = A=1 B=x=y C=", |s| {
            s.env
                == [
                    ("A".into(), "1".into()),
                    ("B".into(), "x=y".into()),
                    ("C".into(), String::new()),
                ]
        }),
        ("env = A=1\nenv += B=2", |s| s.env.len() == 2),
        ("passenv = PATH TERM", |s| {
            s.passenv == Some(vec!["PATH".into(), "TERM".into()])
        }),
        ("passenv =", |s| s.passenv == Some(Vec::new())),
    ]);
    let config = load_service("");
    assert_eq!(
        only(&config).passenv,
        None,
        "without passenv nothing is chosen"
    );
    rejected(&[
        // Observed: "FOO has no '='".
        ("env = FOO", "env: 'FOO' is not NAME=value"),
        ("env = =x", "env: '=x' has no variable name"),
        ("env -= A=1", "'-=' cannot be used with 'env'"),
    ]);
}

#[test]
fn logging_settings_are_typed() {
    accepted(&[
        ("log_type = SYSLOG daemon", |s| {
            matches!(&s.log_type, Some(LogType::Syslog { facility, level })
                if facility.name == "daemon" && facility.code == 24 && level.name == "info")
        }),
        ("log_type = SYSLOG local3 warning", |s| {
            matches!(&s.log_type, Some(LogType::Syslog { facility, level })
                if facility.code == 19 << 3 && level.code == 4)
        }),
        ("log_type = FILE /var/log/chal.log", |s| {
            s.log_type
                == Some(LogType::File {
                    path: "/var/log/chal.log".into(),
                    soft_limit: None,
                    hard_limit: None,
                })
        }),
        // Observed: xinetd dumps "soft=102400 hard=107520" for this line.
        ("log_type = FILE /var/log/chal.log 100K", |s| {
            matches!(
                &s.log_type,
                Some(LogType::File {
                    soft_limit: Some(102400),
                    hard_limit: Some(107520),
                    ..
                })
            )
        }),
        ("log_type = FILE /var/log/chal.log 1K 2K", |s| {
            matches!(
                &s.log_type,
                Some(LogType::File {
                    soft_limit: Some(1024),
                    hard_limit: Some(2048),
                    ..
                })
            )
        }),
        ("log_on_success = PID HOST EXIT DURATION USERID", |s| {
            s.log_on_success.len() == 5 && s.log_on_success.contains(&LogField::Duration)
        }),
        ("log_on_failure = HOST ATTEMPT USERID", |s| {
            s.log_on_failure.contains(&LogField::Attempt)
        }),
        ("log_on_success =", |s| s.log_on_success.is_empty()),
    ]);
    let config = load_service("");
    assert_eq!(
        only(&config).log_type,
        None,
        "xinetd logs nothing per connection by default"
    );
}

#[test]
fn logging_settings_reject_bad_values() {
    rejected(&[
        (
            "log_type = SYSLOG kernel",
            "log_type: unknown syslog facility 'kernel'",
        ),
        (
            "log_type = SYSLOG daemon loud",
            "log_type: unknown syslog level 'loud'",
        ),
        ("log_type = FILE", "log_type: expected 'FILE path"),
        ("log_type = FILE /x 2K 1K", "below the soft limit"),
        ("log_type = STDERR", "log_type: expected SYSLOG or FILE"),
        (
            "log_on_success = ATTEMPT",
            "log_on_success: 'ATTEMPT' is not one of",
        ),
        (
            "log_on_failure = PID",
            "log_on_failure: 'PID' is not one of",
        ),
        (
            "log_on_success = TRAFFIC",
            "TRAFFIC is only valid with redirect",
        ),
    ]);
}

#[test]
fn relative_paths_resolve_against_the_directory_of_the_file_naming_them() {
    let mut files = machine();
    files.add_executable("/etc/xinetd.d/bin/chal", b"\x7fELF".to_vec());
    files.add(
        "/etc/xinetd.d/ctf",
        service_text(
            "chal",
            9999,
            "log_type = FILE logs/chal.log\nbanner = ../motd",
        )
        .replace("/srv/chal", "bin/chal"),
    );
    files.add("/etc/motd", "hi\n");
    files.add(MAIN, "includedir xinetd.d\n");
    let config = kinetd_config::load_with(&files, std::path::Path::new(MAIN));
    assert_runs(&config);
    let service = only(&config);
    assert_eq!(
        service.server,
        Some(PathBuf::from("/etc/xinetd.d/bin/chal"))
    );
    assert_eq!(service.banner, Some(PathBuf::from("/etc/xinetd.d/../motd")));
    assert!(matches!(&service.log_type,
        Some(LogType::File { path, .. }) if path == &PathBuf::from("/etc/xinetd.d/logs/chal.log")));
    assert_reported(
        &config,
        Severity::Note,
        "relative server path read as '/etc/xinetd.d/bin/chal'",
    );
}

#[test]
fn banners_are_paths_and_a_missing_one_is_only_a_warning() {
    accepted(&[
        ("banner_fail = /etc/banner_fail", |s| {
            s.banner_fail == Some("/etc/banner_fail".into())
        }),
        ("banner_success = /etc/banner_fail", |s| {
            s.banner_success.is_some()
        }),
    ]);
    let config = load_service("banner = /etc/nothing");
    assert!(only(&config).is_enabled());
    assert_eq!(only(&config).banner, Some(PathBuf::from("/etc/nothing")));
    assert_reported(
        &config,
        Severity::Warning,
        "banner file '/etc/nothing' does not exist",
    );
}

#[test]
fn address_lists_accept_every_xinetd_form() {
    let config = load_service(
        "only_from = 10.1.0.0 192.168.1.{5,7} 172.16.0.0/12 fd00::/8 ::1 loopback localhost\n\
         no_access = 10.1.2.3 0.0.0.0/32",
    );
    assert_runs(&config);
    let service = only(&config);
    let only_from = service.only_from.as_ref().expect("only_from set");
    let allowed = |ip: &str| only_from.matches(ip.parse().unwrap());
    assert!(allowed("10.1.200.3"), "10.1.0.0 is 10.1.*.*");
    assert!(!allowed("10.2.0.1"));
    assert!(allowed("192.168.1.5") && allowed("192.168.1.7") && !allowed("192.168.1.6"));
    assert!(allowed("172.31.255.255") && !allowed("172.32.0.0"));
    assert!(allowed("fd12::1") && allowed("::1") && !allowed("fe80::1"));
    assert!(allowed("127.8.8.8"), "/etc/networks: loopback is 127");
    assert!(
        allowed("::ffff:10.1.0.9"),
        "IPv4-mapped clients of a dual-stack socket"
    );
    assert!(service.no_access.matches("10.1.2.3".parse().unwrap()));
    assert!(!service.no_access.matches("10.1.2.4".parse().unwrap()));
}

#[test]
fn zero_address_matches_everything_and_empty_only_from_nobody() {
    let config = load_service("only_from = 0.0.0.0");
    let only_from = only(&config).only_from.clone().unwrap();
    assert!(only_from.matches("203.0.113.9".parse().unwrap()));

    let config = load_service("only_from =");
    let only_from = only(&config).only_from.clone().unwrap();
    assert!(!only_from.matches("127.0.0.1".parse().unwrap()));
    assert_reported(
        &config,
        Severity::Warning,
        "only_from is empty, so nobody may connect",
    );
}

#[test]
fn address_lists_reject_malformed_patterns() {
    rejected(&[
        (
            "only_from = 10.0.0.0/33",
            "only_from: '10.0.0.0/33': an IPv4 prefix has at most 32 bits",
        ),
        (
            "only_from = 10.0.0.1,10.0.0.2",
            "a ',' is only allowed inside {...}",
        ),
        ("no_access = 10.{1,x}", "not a valid factorised address"),
        (
            "no_access = .example.com",
            "domain patterns need a reverse DNS lookup",
        ),
        ("no_access = no-such-host.invalid", "could not be resolved"),
        ("only_from = a/b/c", "not a valid network"),
    ]);
}

#[test]
fn access_times_are_intervals_inside_one_day() {
    let config = load_service("access_times = 8:00-12:30 14:00-23:59");
    let times = only(&config).access_times.clone().expect("set");
    let at = |hour, minute| times.contains(TimeOfDay { hour, minute });
    assert!(at(8, 0) && at(12, 30) && at(23, 59) && at(15, 0));
    assert!(!at(7, 59) && !at(12, 31) && !at(13, 0));
    rejected(&[
        // Observed: xinetd rejects its own manual's example ("invalid time interval").
        (
            "access_times = 12:00-24:00",
            "access_times: '12:00-24:00' is not an interval",
        ),
        // Observed: "invalid time interval: 2:00-1:00".
        ("access_times = 2:00-1:00", "cannot wrap past midnight"),
        ("access_times = noon", "'noon' is not an interval"),
    ]);
}

#[test]
fn redirect_resolves_its_target() {
    let config = load(
        "service fwd\n{\n\tsocket_type = stream\n\twait = no\n\ttype = UNLISTED\n\tport = 8000\n\
         \tuser = nobody\n\tredirect = 127.0.0.1 9000\n\tlog_on_success = TRAFFIC\n}\n",
    );
    assert_runs(&config);
    let service = only(&config);
    assert_eq!(
        service.redirect,
        Some(SocketAddr::from(([127, 0, 0, 1], 9000)))
    );
    assert_eq!(service.server, None, "redirect needs no server");
    rejected(&[(
        "redirect = 127.0.0.1 gopher",
        "redirect: 'gopher' is not a port number",
    )]);

    // Observed: xinetd takes a service name for the port, from /etc/services.
    let config = load(
        "service fwd\n{\n\tsocket_type = stream\n\twait = no\n\ttype = UNLISTED\n\tport = 8000\n\
         \tuser = nobody\n\tredirect = localhost finger\n}\n",
    );
    assert_runs(&config);
    assert_eq!(
        only(&config).redirect,
        Some(SocketAddr::from(([127, 0, 0, 1], 79)))
    );
}

#[test]
fn ports_come_from_the_service_or_from_etc_services() {
    let config = load(&service_text("chal", 9999, "").replace("9999", "70000"));
    assert_rejected(&config, "port: 70000 is above 65535");
    let listed = "service finger\n{\n\tsocket_type = stream\n\twait = no\n\tuser = root\n\
                  \tserver = /srv/chal\n}\n";
    let config = load(listed);
    assert_runs(&config);
    assert_eq!(only(&config).port, 79);
    assert_eq!(only(&config).origin("port"), Some(Origin::Defaults));

    let config = load(&listed.replace("}", "\tport = 80\n}"));
    assert_rejected(&config, "port 80 differs from /etc/services");

    // Observed: "service/protocol combination not in /etc/services: notunlisted/tcp".
    let config = load(&listed.replace("finger", "notunlisted"));
    assert_rejected(&config, "notunlisted/tcp is not in /etc/services");

    let config = load(&service_text("chal", 9999, "").replace("\tport = 9999\n", ""));
    assert_rejected(
        &config,
        "missing attribute 'port' (needed with type = UNLISTED)",
    );
}

#[test]
fn ignored_attributes_are_accepted_and_reported() {
    for line in [
        "deny_time = 5",
        "libwrap = chal",
        "mdns = yes",
        "rpc_version = 1",
        "rpc_number = 7",
    ] {
        let config = load_service(line);
        assert_runs(&config);
        let name = line.split(' ').next().unwrap();
        assert_reported(&config, Severity::Note, &format!("'{name}' ignored"));
    }
    let config =
        load(&service_text("chal", 9999, "flags = LABELED").replace("UNLISTED", "UNLISTED TCPMUX"));
    assert_runs(&config);
    assert_reported(&config, Severity::Note, "flag LABELED has no effect");
    assert_reported(
        &config,
        Severity::Note,
        "type TCPMUX has no meaning in kinetd",
    );
}

#[test]
fn internal_and_rpc_services_are_rejected() {
    let config = load_service("type = INTERNAL");
    // The first `type` line wins, so this one only warns...
    assert_reported(&config, Severity::Warning, "'type' is already set");
    let config = load(&service_text("chal", 9999, "").replace("UNLISTED", "UNLISTED INTERNAL"));
    assert_rejected(&config, "kinetd has no built-in (INTERNAL) services");
    let config = load(&service_text("chal", 9999, "").replace("UNLISTED", "UNLISTED RPC"));
    assert_rejected(&config, "kinetd does not serve RPC");
}

#[test]
fn id_names_the_service_in_lists_and_must_be_unique() {
    // Observed: xinetd 2.3.15 runs two services with the same id; kinetd, which
    // identifies services by id in logs and across reloads, rejects the second.
    let config = load_service("id = pwn1");
    assert_eq!(only(&config).id, "pwn1");
    assert_eq!(only(&config).name, "chal");
    let config = load(&format!(
        "{}{}",
        service_text("a", 9001, "id = same"),
        service_text("b", 9002, "id = same")
    ));
    assert!(config.services[0].is_enabled());
    assert!(!config.services[1].is_enabled());
    assert_reported(&config, Severity::Error, "the id 'same' is already used");
}

#[test]
fn disable_yes_switches_a_service_off_without_checking_it() {
    let config = load_service("disable = yes\nbogus_attribute = 1");
    assert_eq!(only(&config).status, kinetd_config::Status::DisabledBySelf);
    assert!(!config.has_errors());
    assert!(
        config.every_service_starts(),
        "a service switched off on purpose is fine"
    );
    let config = load_service("disable = no");
    assert_runs(&config);
    rejected(&[("disable = off", "disable: expected 'yes' or 'no'")]);
}

#[test]
fn two_enabled_services_cannot_share_a_port() {
    let config = load(&format!(
        "{}{}",
        service_text("a", 9001, ""),
        service_text("b", 9001, "")
    ));
    assert!(config.services[0].is_enabled());
    assert!(!config.services[1].is_enabled());
    assert_reported(
        &config,
        Severity::Error,
        "port 9001 is already used by service a",
    );

    let config = load(&format!(
        "{}{}",
        service_text("a", 9001, "bind = 127.0.0.1"),
        service_text("b", 9001, "bind = 127.0.0.2")
    ));
    assert_runs(&config);

    // Observed: the port of a disabled service is free for another.
    let config = load(&format!(
        "{}{}",
        service_text("a", 9001, "flags = NAMEINARGS"),
        service_text("b", 9001, "")
    ));
    assert!(config.services[1].is_enabled());
}

#[test]
fn dgram_services_default_to_udp() {
    let config = load_service("").clone();
    assert_eq!(only(&config).protocol, Protocol::Tcp);
    let config =
        load(&service_text("chal", 9999, "").replace("stream\n\twait = no", "dgram\n\twait = yes"));
    assert_runs(&config);
    assert_eq!(only(&config).protocol, Protocol::Udp);
    // Observed: xinetd accepts dgram with wait = no; kinetd warns.
    let config = load(&service_text("chal", 9999, "").replace("stream", "dgram"));
    assert!(only(&config).is_enabled());
    assert_reported(&config, Severity::Warning, "dgram with wait = no");
}

#[test]
fn required_attributes_are_named_when_missing() {
    for (remove, attribute) in [
        ("\tsocket_type = stream\n", "socket_type"),
        ("\twait = no\n", "wait"),
        ("\tuser = root\n", "user"),
        ("\tserver = /srv/chal\n", "server"),
    ] {
        // Observed: "Service missinguser missing attribute user - DISABLING".
        let config = load(&service_text("chal", 9999, "").replace(remove, ""));
        assert_rejected(
            &config,
            &format!("service chal: missing attribute '{attribute}'"),
        );
    }
    // Observed: with protocol = tcp and no socket_type, xinetd runs a stream service.
    let config =
        load(&service_text("chal", 9999, "protocol = tcp").replace("\tsocket_type = stream\n", ""));
    assert_runs(&config);
    assert_eq!(only(&config).socket_type, SocketType::Stream);
}
