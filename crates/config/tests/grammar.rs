//! The file grammar: entries and braces, comments, operators, include and includedir.
//! Cases marked "observed" were worked out by running Debian's xinetd 2.3.15.3 on the
//! same text.

mod common;

use std::path::Path;

use common::*;
use kinetd_config::{MemFiles, Severity, Status, load_with};

#[test]
fn comments_blank_lines_and_indentation_are_skipped() {
    let config = load(&format!(
        "# a comment\n\n   # indented comment\n{}",
        service_text("chal", 9999, "\t# inside\n\n   per_source = 3")
    ));
    assert_runs(&config);
    assert_eq!(only(&config).per_source, Some(3));
}

#[test]
fn trailing_comments_are_stripped_and_noted() {
    // Observed: xinetd warns "attribute per_source expects 1 values and 8 values were
    // specified" and runs the service without the limit.
    let config = load_service("per_source = 10 # the maximum instances per source IP");
    assert_runs(&config);
    assert_eq!(only(&config).per_source, Some(10));
    assert_eq!(
        diagnostics(&config),
        [format!(
            "{EXTRA_LINE}: note: trailing comment '# the maximum instances per source IP' \
             stripped and the value applied (xinetd has no trailing comments: it reads the \
             words as values and drops the line)"
        )]
    );
}

#[test]
fn no_space_before_the_operator_is_accepted_and_noted() {
    // Observed: xinetd logs "Attribute user needs a space before operator" and drops the
    // whole service.
    let config = load(&service_text("chal", 9999, "").replace("user = root", "user=nobody"));
    assert_runs(&config);
    assert_eq!(
        only(&config).credentials.as_ref().map(|c| c.uid),
        Some(65534)
    );
    assert_reported(&config, Severity::Note, "no space between 'user' and '='");

    // Observed: "per_source =10" works in xinetd too; no note for it.
    let config = load_service("per_source =10");
    assert_eq!(only(&config).per_source, Some(10));
    assert!(config.diagnostics.is_empty(), "{:?}", diagnostics(&config));

    let config = load_service("per_source+=10");
    assert_reported(
        &config,
        Severity::Note,
        "no space between 'per_source' and '+='",
    );
}

#[test]
fn unknown_attributes_reject_the_service_with_a_suggestion() {
    // Observed: xinetd warns "bad service attribute: per_sourc" and runs the service.
    for (line, message) in [
        (
            "kafel_rules = /etc/pwn.policy",
            "unknown attribute 'kafel_rules' (did you mean 'kafel_rule'?)",
        ),
        (
            "per_sourc = 10",
            "unknown attribute 'per_sourc' (did you mean 'per_source'?)",
        ),
        (
            "rlimit_cpus = 10",
            "unknown attribute 'rlimit_cpus' (did you mean 'rlimit_cpu'?)",
        ),
        ("frobnicate = yes", "unknown attribute 'frobnicate'"),
    ] {
        let config = load_service(line);
        assert_rejected(&config, message);
        assert!(
            config
                .diagnostics
                .iter()
                .any(|d| d.location.line == EXTRA_LINE && d.message.ends_with(message)),
            "{:?}",
            diagnostics(&config)
        );
    }
}

#[test]
fn one_bad_service_leaves_the_others_running() {
    let config = load(&format!(
        "{}{}{}",
        service_text("good1", 9001, ""),
        service_text("bad", 9002, "instances = lots"),
        service_text("good2", 9003, "")
    ));
    let states: Vec<(&str, &Status)> = config
        .services
        .iter()
        .map(|s| (s.name.as_str(), &s.status))
        .collect();
    assert_eq!(
        states,
        [
            ("good1", &Status::Enabled),
            ("bad", &Status::Rejected),
            ("good2", &Status::Enabled)
        ]
    );
    assert!(!config.fatal, "a bad service does not stop the daemon");
    assert!(!config.every_service_starts());
    // Observed: "Number of instances is invalid: abc" then "Error parsing attribute
    // instances - DISABLING SERVICE"; kinetd says the same in one line, plus a summary.
    assert_eq!(
        at_least(&config, Severity::Error),
        [
            "19: error: instances: 'lots' is not a whole number or UNLIMITED",
            "11: error: service bad is disabled because of the errors above",
        ]
    );
}

#[test]
fn an_open_brace_on_the_service_line_is_a_clear_error() {
    // Observed: xinetd logs "Service s8: missing '{'" and drops the entry.
    let text = service_text("chal", 9999, "").replacen("chal\n{", "chal {", 1);
    let config = load(&text);
    assert_rejected(
        &config,
        "'{' must be alone on the line after the entry name",
    );
    assert_eq!(config.services[0].name, "chal");

    let config = load(&format!(
        "service chal\nsocket_type = stream\nwait = no\n}}\n{}",
        service_text("next", 9001, "")
    ));
    assert_eq!(
        at_least(&config, Severity::Error),
        [
            "1: error: service chal: missing '{' on the line after it",
            "1: error: service chal: missing attribute 'user'",
            "1: error: service chal: missing attribute 'server'",
            "1: error: service chal: chal/tcp is not in /etc/services; add type = UNLISTED \
             and a port",
            "1: error: service chal is disabled because of the errors above",
        ],
        "the lines after it are read as its body, not as stray lines"
    );
    assert!(config.services[1].is_enabled());
}

#[test]
fn a_closing_brace_after_a_value_ends_the_entry_with_an_error() {
    // Observed: xinetd reads "cps = 0 5 }" as three values, runs on into the next
    // entry ("Bad operator for attribute: service") and loses both services silently.
    let text = format!(
        "{}{}",
        service_text("first", 9001, "cps = 100 5 }")
            .replace("cps = 100 5 }\n}\n", "cps = 100 5 }\n"),
        service_text("second", 9002, "")
    );
    let config = load(&text);
    assert_eq!(config.services.len(), 2, "{:?}", diagnostics(&config));
    assert_eq!(config.services[0].status, Status::Rejected);
    assert_eq!(
        config.services[0].cps.max_per_second, 100,
        "the value itself was read"
    );
    assert_eq!(
        config.services[1].status,
        Status::Enabled,
        "the next service is not lost"
    );
    assert_reported(&config, Severity::Error, "'}' must be alone on its line");
}

#[test]
fn a_missing_closing_brace_is_reported_where_the_next_entry_starts() {
    let text = format!(
        "{}{}",
        service_text("first", 9001, "")
            .trim_end()
            .trim_end_matches('}'),
        service_text("second", 9002, "")
    );
    let config = load(&text);
    assert_eq!(config.services.len(), 2);
    assert_eq!(config.services[0].status, Status::Rejected);
    assert!(config.services[1].is_enabled());
    assert_reported(
        &config,
        Severity::Error,
        "service first: missing '}' before this line",
    );

    let config = load("service chal\n{\n\tsocket_type = stream\n");
    assert_reported(
        &config,
        Severity::Error,
        "missing '}' before the end of the file",
    );
}

#[test]
fn stray_top_level_lines_are_errors_and_their_blocks_are_skipped() {
    let config = load(&format!(
        "servce typo\n{{\n\tuser = root\n}}\n{}",
        service_text("ok", 9001, "")
    ));
    assert_eq!(config.services.len(), 1);
    assert!(config.services[0].is_enabled());
    assert_reported(
        &config,
        Severity::Error,
        "found 'servce' (xinetd: \"missing service keyword\")",
    );
    assert!(
        !config.every_service_starts(),
        "a lost entry makes check fail"
    );
}

#[test]
fn bad_operators_and_missing_values_are_errors() {
    // Observed: xinetd logs "Bad operator for attribute" and drops the entry.
    let config = load_service("per_source := 3");
    assert_rejected(&config, "expected '=', '+=' or '-=', found ':='");
    let config = load_service("per_source");
    assert_rejected(
        &config,
        "'per_source': expected '=', '+=' or '-=' and a value",
    );
    let config = load_service("= 3");
    assert_rejected(&config, "'=' with no attribute name before it");
}

#[test]
fn a_second_value_for_a_single_valued_attribute_warns_and_keeps_the_first() {
    // Observed: "attribute already set: flags", and the first line wins (also for
    // `server_args +=`).
    let config = load_service("per_source = 3\nper_source = 5");
    assert_eq!(only(&config).per_source, Some(3));
    assert_eq!(
        diagnostics(&config),
        [
            "10: warning: 'per_source' is already set at line 9; the first value is kept, as in \
          xinetd"
        ]
    );
    let config = load_service("server_args = a\nserver_args = b");
    assert_eq!(only(&config).argv, ["chal", "a"]);
}

#[test]
fn plus_and_minus_on_a_single_valued_attribute_warn_and_are_ignored() {
    let config = load_service("server_args = a\nserver_args += b\nper_source -= 3");
    assert!(only(&config).is_enabled());
    assert_eq!(only(&config).argv, ["chal", "a"]);
    assert_eq!(only(&config).per_source, None);
    assert_reported(
        &config,
        Severity::Warning,
        "'+=' cannot be used with 'server_args'",
    );
    assert_reported(
        &config,
        Severity::Warning,
        "'-=' cannot be used with 'per_source'",
    );
}

#[test]
fn list_operators_replace_add_and_remove() {
    // Observed: in a service, a second `only_from =` replaces the first.
    let config = load_service("only_from = 127.0.0.5\nonly_from = 127.0.0.6");
    assert_eq!(
        only(&config).only_from.as_ref().unwrap().to_string(),
        "127.0.0.6"
    );
    let config =
        load_service("only_from = 10.0.0.1 10.0.0.2\nonly_from += 10.0.0.3\nonly_from -= 10.0.0.1");
    assert_eq!(
        only(&config).only_from.as_ref().unwrap().to_string(),
        "10.0.0.2 10.0.0.3"
    );
    let config = load_service("log_on_success = PID HOST\nlog_on_success -= PID");
    assert_eq!(only(&config).log_on_success.len(), 1);
}

#[test]
fn values_are_split_on_blanks_with_no_quoting() {
    let config = load_service("server_args = \"two words\"\tand\t\ttabs");
    assert_eq!(
        only(&config).argv,
        ["chal", "\"two", "words\"", "and", "tabs"]
    );
}

#[test]
fn names_and_enumerations_are_case_sensitive() {
    let config = load_service("Per_Source = 3");
    assert_rejected(
        &config,
        "unknown attribute 'Per_Source' (did you mean 'per_source'?)",
    );
    let config = load(&service_text("chal", 9999, "").replace("stream", "STREAM"));
    assert_rejected(&config, "'STREAM' is not stream, dgram, raw or seqpacket");
    let config = load_service("wait = No");
    assert_reported(&config, Severity::Warning, "'wait' is already set");
}

#[test]
fn windows_line_endings_and_overlong_lines_are_handled() {
    let config = load(&service_text("chal", 9999, "per_source = 4").replace('\n', "\r\n"));
    assert_runs(&config);
    assert_eq!(only(&config).per_source, Some(4));

    let long = format!("server_args = {}", "x".repeat(17 * 1024));
    let config = load_service(&long);
    assert_reported(&config, Severity::Error, "line longer than 16384 bytes");
}

#[test]
fn a_byte_order_mark_at_the_start_of_a_file_is_ignored_with_a_note() {
    // Written by some Windows editors; invisible, so an error about it shows nothing wrong.
    let text = format!("\u{feff}{}", service_text("chal", 9999, "per_source = 4"));
    let config = load(&text.replace('\n', "\r\n"));
    assert_runs(&config);
    assert_eq!(only(&config).per_source, Some(4));
    assert_reported(&config, Severity::Note, "byte order mark");

    // Anywhere else it is an ordinary (and wrong) character.
    let config = load(&format!(
        "# a comment\n\u{feff}{}",
        service_text("chal", 9999, "")
    ));
    assert_reported(&config, Severity::Error, "expected 'service NAME'");
}

fn tree(entries: &[(&str, &str)]) -> MemFiles {
    let mut files = machine();
    for (path, text) in entries {
        files.add(*path, *text);
    }
    files
}

#[test]
fn includedir_reads_files_in_byte_order_and_names_each_skipped_file() {
    let files = tree(&[
        (MAIN, "includedir /etc/xinetd.d\n"),
        ("/etc/xinetd.d/b", &service_text("b", 9002, "")),
        ("/etc/xinetd.d/A", &service_text("A", 9001, "")),
        ("/etc/xinetd.d/ctf.conf", &service_text("dotted", 9003, "")),
        ("/etc/xinetd.d/c~", &service_text("backup", 9004, "")),
        ("/etc/xinetd.d/sub/d", &service_text("nested", 9005, "")),
    ]);
    let config = load_with(&files, Path::new(MAIN));
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["A", "b"], "strcmp order: upper case first");
    assert_eq!(
        diagnostics(&config),
        [
            "1: warning: '/etc/xinetd.d/ctf.conf' skipped: xinetd and kinetd ignore files in \
             an includedir whose name contains '.' or ends with '~'",
            "1: warning: '/etc/xinetd.d/c~' skipped: xinetd and kinetd ignore files in an \
             includedir whose name contains '.' or ends with '~'",
            "1: note: '/etc/xinetd.d/sub' skipped: not a regular file",
        ]
    );
    assert!(
        config.every_service_starts(),
        "skipped files are warnings, not errors"
    );
}

#[test]
fn include_reads_a_file_relative_to_the_including_file() {
    let files = tree(&[
        (MAIN, "include conf/one\ninclude /nowhere\n"),
        ("/etc/conf/one", &service_text("one", 9001, "")),
    ]);
    let config = load_with(&files, Path::new(MAIN));
    assert_eq!(config.services.len(), 1);
    assert!(config.services[0].is_enabled());
    let error = config
        .diagnostics
        .iter()
        .find(|d| d.severity == Severity::Error)
        .unwrap();
    assert_eq!(error.location.line, 2);
    assert!(
        error
            .message
            .starts_with("cannot read included file '/nowhere'"),
        "{error}"
    );
    assert_eq!(config.services[0].location.path, Path::new("/etc/conf/one"));
}

#[test]
fn include_loops_are_cut() {
    let files = tree(&[
        (MAIN, "include /etc/a\n"),
        ("/etc/a", "include /etc/xinetd.conf\n"),
    ]);
    let config = load_with(&files, Path::new(MAIN));
    assert_reported(
        &config,
        Severity::Error,
        "'/etc/xinetd.conf' includes itself",
    );
}

#[test]
fn diagnostics_render_as_path_line_severity_message() {
    let files = tree(&[
        (MAIN, "include /etc/x.d/ctf\n"),
        ("/etc/x.d/ctf", &service_text("c", 1, "bogus = 1")),
    ]);
    let config = load_with(&files, Path::new(MAIN));
    let rendered: Vec<String> = config
        .sorted_diagnostics()
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(
        rendered,
        [
            "/etc/x.d/ctf:9: error: unknown attribute 'bogus'",
            "/etc/x.d/ctf:1: error: service c is disabled because of the errors above",
            "/etc/xinetd.conf: warning: no service is enabled",
        ]
    );
}

#[test]
fn an_unreadable_main_file_is_fatal() {
    let config = load_with(&machine(), Path::new("/etc/none.conf"));
    assert!(config.fatal);
    assert_eq!(config.diagnostics[0].location.line, 0);
    assert!(
        config.diagnostics[0]
            .message
            .starts_with("cannot read the configuration")
    );
}

#[test]
fn words_after_the_service_name_are_ignored_with_a_warning() {
    // Observed: xinetd runs `service b extra` as service b, silently.
    let config =
        load(&service_text("chal", 9999, "").replacen("service chal", "service chal extra", 1));
    assert!(only(&config).is_enabled());
    assert_eq!(only(&config).name, "chal");
    assert_reported(
        &config,
        Severity::Warning,
        "words after the service name ignored: 'extra'",
    );

    let config = load("service\n{\n}\n");
    assert!(config.services.is_empty());
    assert_reported(&config, Severity::Error, "expected 'service NAME'");
}

#[test]
fn a_configuration_reading_the_same_files_over_and_over_is_cut_short() {
    // Every file includes the next one 8 times: without a bound, 8^5 files.
    let mut files = machine();
    files.add(MAIN, "include /etc/l1\n".repeat(8));
    for level in 1..5 {
        files.add(
            format!("/etc/l{level}"),
            format!("include /etc/l{}\n", level + 1).repeat(8),
        );
    }
    files.add("/etc/l5", service_text("chal", 9999, ""));
    let config = load_with(&files, Path::new(MAIN));
    assert_reported(&config, Severity::Error, "more than 4096 files read");
}

#[test]
fn a_configuration_without_enabled_services_is_warned_about() {
    let config = load("# nothing here\n");
    assert_eq!(diagnostics(&config), ["0: warning: no service is enabled"]);
    assert!(config.every_service_starts(), "nothing fails to start");
}

#[test]
fn a_comment_after_a_brace_is_ignored_with_a_note() {
    // Observed: xinetd reports "missing '{'" for `{ # open`, and reads `} # end` as an
    // attribute ("Bad operator for attribute: }"), losing that service and the next.
    let text = format!(
        "{}{}",
        service_text("a", 9001, "")
            .replacen("\n{\n", "\n{ # open\n", 1)
            .replace("\n}\n", "\n} # end\n"),
        service_text("b", 9002, "")
    );
    let config = load(&text);
    assert!(
        config.services.iter().all(|s| s.is_enabled()),
        "{:?}",
        diagnostics(&config)
    );
    assert_eq!(config.services.len(), 2);
    assert_eq!(
        diagnostics(&config),
        [
            "2: note: comment after '{' ignored (xinetd rejects the entry for it)",
            "10: note: comment after '}' ignored (xinetd rejects the entry for it)",
        ]
    );
}
