//! The `defaults` entry: what services inherit, how lists accumulate, the
//! `enabled`/`disabled` lists, and why an error there stops everything.

mod common;

use common::*;
use kinetd_config::{LogType, Origin, Severity, Status};

fn with_defaults(defaults: &str, services: &str) -> kinetd_config::Config {
    load(&format!("defaults\n{{\n{defaults}\n}}\n{services}"))
}

#[test]
fn services_inherit_what_they_do_not_set_and_origins_say_so() {
    let config = with_defaults(
        "instances = 60\nper_source = 5\ncps = 200 5\numask = 027\nbind = 127.0.0.1\n\
         v6only = no\ngroups = yes\nmax_load = 3\nbanner_fail = /etc/banner_fail",
        &service_text("chal", 9999, "per_source = 10"),
    );
    assert_runs(&config);
    let service = only(&config);
    assert_eq!(service.instances, Some(60));
    assert_eq!(service.per_source, Some(10), "the service's own value wins");
    assert_eq!(
        (service.cps.max_per_second, service.cps.wait_seconds),
        (200, 5)
    );
    assert_eq!(service.umask, Some(0o27));
    assert_eq!(service.bind, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(service.v6only, Some(false));
    assert!(service.groups);
    assert_eq!(service.max_load, Some(3.0));
    assert!(service.banner_fail.is_some());
    assert_eq!(service.origin("instances"), Some(Origin::Defaults));
    assert_eq!(service.origin("per_source"), Some(Origin::Service));
    assert_eq!(service.origin("user"), Some(Origin::Service));
    assert_eq!(service.origin("nice"), None);
}

#[test]
fn xinetd_defaults_apply_without_a_defaults_entry() {
    let config = load_service("");
    let service = only(&config);
    assert_eq!(service.instances, None, "UNLIMITED");
    assert_eq!(service.per_source, None, "UNLIMITED");
    assert_eq!(
        (service.cps.max_per_second, service.cps.wait_seconds),
        (50, 10)
    );
    assert_eq!(service.log_type, None);
    assert!(service.log_on_success.is_empty() && service.log_on_failure.is_empty());
    assert_eq!(service.only_from, None);
    assert!(service.no_access.is_empty());
    assert_eq!(service.rlimits, Default::default());
    assert_eq!(service.policy.as_ref().map(|p| p.path.clone()), None);
}

#[test]
fn lists_in_defaults_accumulate_and_services_add_or_replace() {
    // Observed: two `only_from =` lines in defaults give both addresses; `+=` in a
    // service adds to them; `-=` removes an inherited field.
    let defaults = "only_from = 127.0.0.1\nonly_from = 127.0.0.2\nlog_on_success = PID HOST";
    let config = with_defaults(
        defaults,
        &format!(
            "{}{}{}",
            service_text("add", 9001, "only_from += 127.0.0.3\nlog_on_success -= PID"),
            service_text("replace", 9002, "only_from = 10.0.0.1"),
            service_text("inherit", 9003, "")
        ),
    );
    assert_runs(&config);
    let [add, replace, inherit] = &config.services[..] else {
        panic!("three services")
    };
    assert_eq!(
        add.only_from.as_ref().unwrap().to_string(),
        "127.0.0.1 127.0.0.2 127.0.0.3"
    );
    assert_eq!(add.origin("only_from"), Some(Origin::Merged));
    assert_eq!(
        add.log_on_success
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>(),
        ["HOST"]
    );
    assert_eq!(replace.only_from.as_ref().unwrap().to_string(), "10.0.0.1");
    assert_eq!(replace.origin("only_from"), Some(Origin::Service));
    assert_eq!(
        inherit.only_from.as_ref().unwrap().to_string(),
        "127.0.0.1 127.0.0.2"
    );
    assert_eq!(inherit.origin("only_from"), Some(Origin::Defaults));
}

#[test]
fn a_file_log_in_defaults_is_shared_by_services_without_their_own() {
    let config = with_defaults(
        "log_type = FILE /var/log/kinetd.log",
        &format!(
            "{}{}",
            service_text("a", 9001, ""),
            service_text("b", 9002, "log_type = SYSLOG daemon")
        ),
    );
    assert_runs(&config);
    let shared = Some(LogType::File {
        path: "/var/log/kinetd.log".into(),
        soft_limit: None,
        hard_limit: None,
    });
    assert_eq!(config.defaults.log_type, shared);
    assert_eq!(config.services[0].log_type, shared);
    assert!(matches!(
        config.services[1].log_type,
        Some(LogType::Syslog { .. })
    ));
}

#[test]
fn defaults_apply_to_services_written_before_them_too() {
    // xinetd copies the lists only into services that come after `defaults`; kinetd
    // applies defaults wherever they stand.
    let config = load(&format!(
        "{}defaults\n{{\n\tonly_from = 127.0.0.1\n\tinstances = 4\n}}\n",
        service_text("early", 9001, "")
    ));
    let service = only(&config);
    assert_eq!(service.instances, Some(4));
    assert_eq!(service.only_from.as_ref().unwrap().to_string(), "127.0.0.1");
}

#[test]
fn disabled_and_enabled_lists_switch_services_off_by_id() {
    let services = format!(
        "{}{}{}",
        service_text("a", 9001, ""),
        service_text("b", 9002, "id = bee"),
        service_text("c", 9003, "")
    );
    let config = with_defaults("disabled = a\ndisabled = nosuch", &services);
    let states: Vec<&Status> = config.services.iter().map(|s| &s.status).collect();
    assert_eq!(
        states,
        [
            &Status::DisabledByDefaults,
            &Status::Enabled,
            &Status::Enabled
        ]
    );
    assert_reported(
        &config,
        Severity::Warning,
        "disabled: no service has the id 'nosuch'",
    );

    let config = with_defaults("enabled = bee c", &services);
    let states: Vec<&Status> = config.services.iter().map(|s| &s.status).collect();
    assert_eq!(
        states,
        [
            &Status::NotInEnabledList,
            &Status::Enabled,
            &Status::Enabled
        ]
    );

    // A service's own `disable = yes` always wins.
    let config = with_defaults("enabled = a", &service_text("a", 9001, "disable = yes"));
    assert_eq!(only(&config).status, Status::DisabledBySelf);
}

#[test]
fn a_bad_value_in_defaults_is_fatal() {
    // Observed: xinetd logs "A fatal error was encountered while parsing the default
    // section. xinetd will exit." and exits with status 0.
    let config = with_defaults("instances = abc", &service_text("chal", 9999, ""));
    assert!(config.fatal);
    assert!(!config.every_service_starts());
    assert_eq!(
        at_least(&config, Severity::Error),
        [
            "3: error: instances: 'abc' is not a whole number or UNLIMITED",
            "1: error: the defaults entry has errors: kinetd will not start with this \
             configuration (xinetd exits here too, but with status 0)",
        ]
    );
    // The bad default is reported once, not again for every service.
    assert_eq!(only(&config).instances, None);
}

#[test]
fn unknown_and_misplaced_attributes_in_defaults_are_fatal() {
    let config = with_defaults("instance = 5", &service_text("chal", 9999, ""));
    assert!(config.fatal);
    assert_reported(
        &config,
        Severity::Error,
        "unknown attribute 'instance' (did you mean 'instances'?)",
    );

    // Observed: xinetd warns "attribute: user should not be in default section" and
    // ignores it.
    let config = with_defaults("user = nobody", &service_text("chal", 9999, ""));
    assert!(config.fatal);
    assert_reported(&config, Severity::Error, "'user' cannot be set in defaults");

    let config = load_service("disabled = chal");
    assert_rejected(&config, "'disabled' can only be set in defaults");
}

#[test]
fn a_second_defaults_entry_is_fatal() {
    let config = load("defaults\n{\n\tinstances = 1\n}\ndefaults\n{\n\tinstances = 2\n}\n");
    assert!(config.fatal);
    assert_reported(&config, Severity::Error, "a second 'defaults' entry");
}

#[test]
fn syntax_errors_in_defaults_are_fatal() {
    let config = load("defaults {\n\tinstances = 1\n}\n");
    assert!(config.fatal);
}
