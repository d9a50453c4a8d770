//! The configuration shape nearly every CTF pwn image ships, after the widely copied
//! ctf_xinetd template, read from real files on disk.

use std::path::Path;

use kinetd_config::{Rlimit, Severity, load};

const CTF: &str = "\
service ctf
{
    disable = no
    socket_type = stream
    protocol    = tcp
    wait        = no
    user        = root
    type        = UNLISTED
    port        = 9999
    bind        = 0.0.0.0
    server      = /usr/sbin/chroot
    # replace helloworld to your program
    server_args = --userspec=1000:1000 /home/ctf ./helloworld
    banner_fail = /etc/banner_fail
    # safety options
    per_source\t= 10 # the maximum instances of this service per source IP address
    rlimit_cpu\t= 20 # the maximum number of CPU seconds that the service may use
    #rlimit_as  = 1024M # the Address Space resource limit for the service
}
";

#[test]
fn the_ctf_xinetd_template_loads_with_every_limit_applied() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let conf_dir = dir.path().join("xinetd.d");
    std::fs::create_dir(&conf_dir).unwrap();
    std::fs::write(conf_dir.join("ctf"), CTF).unwrap();
    let main = dir.path().join("xinetd.conf");
    std::fs::write(&main, "defaults\n{\n}\nincludedir xinetd.d\n").unwrap();
    assert!(
        Path::new("/usr/sbin/chroot").exists(),
        "coreutils' chroot is needed"
    );

    let config = load(&main);
    assert!(config.every_service_starts(), "{:#?}", config.diagnostics);
    let service = &config.services[0];
    assert!(service.is_enabled());

    // xinetd would drop both limits (observed: "attribute per_source expects 1 values
    // and 12 values were specified"); kinetd applies them.
    assert_eq!(service.per_source, Some(10));
    assert_eq!(service.rlimits.cpu, Some(Rlimit::Value(20)));
    assert_eq!(
        service.rlimits.address_space, None,
        "the commented-out line stays a comment"
    );
    assert_eq!(service.port, 9999);
    assert_eq!(service.bind, Some("0.0.0.0".parse().unwrap()));
    assert_eq!(
        service.credentials.as_ref().map(|c| (c.uid, c.gid)),
        Some((0, 0))
    );
    assert_eq!(
        service.argv,
        [
            "chroot",
            "--userspec=1000:1000",
            "/home/ctf",
            "./helloworld"
        ],
        "argv[0] is the server's base name, as xinetd builds it"
    );
    assert_eq!(
        service.banner_fail.as_deref(),
        Some(Path::new("/etc/banner_fail"))
    );
    assert_eq!(service.instances, None);
    assert_eq!(
        (service.cps.max_per_second, service.cps.wait_seconds),
        (50, 10)
    );

    let notes: Vec<usize> = config
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Note && d.message.starts_with("trailing comment"))
        .map(|d| d.location.line)
        .collect();
    assert_eq!(
        notes,
        [16, 17],
        "each stripped comment is noted on its line"
    );
}

#[test]
fn relative_paths_resolve_against_the_configuration_not_the_working_directory() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = dir.path().join("chal");
    std::fs::write(&server, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&server, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let main = dir.path().join("xinetd.conf");
    std::fs::write(
        &main,
        "service chal\n{\n\tsocket_type = stream\n\twait = no\n\tuser = root\n\
         \ttype = UNLISTED\n\tport = 9999\n\tserver = chal\n\tbanner = banner\n}\n",
    )
    .unwrap();

    // The temporary directory is not the working directory of the test, so the paths
    // can only have come from the file's own directory. Loading again, as a reload
    // does, gives the same paths (xinetd resolves against its working directory, which
    // is `/` after startup).
    let first = load(&main);
    let second = load(&main);
    assert!(first.services[0].is_enabled(), "{:#?}", first.diagnostics);
    assert_eq!(first.services[0].server.as_deref(), Some(server.as_path()));
    assert_eq!(first.services[0].server, second.services[0].server);
    assert_eq!(first.services[0].banner, Some(dir.path().join("banner")));
}

#[test]
fn a_program_missing_from_the_chroot_is_a_warning_on_server_args() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("home-ctf");
    std::fs::create_dir(&root).unwrap();
    let conf = dir.path().join("ctf");
    std::fs::write(&conf, CTF.replace("/home/ctf", &root.display().to_string())).unwrap();
    let warnings = |config: &kinetd_config::Config| -> Vec<(usize, String)> {
        config
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning && d.message.contains("chroot"))
            .map(|d| (d.location.line, d.message.clone()))
            .collect()
    };

    // Absent: the service starts, and every connection would fail in chroot.
    let config = load(&conf);
    assert!(config.every_service_starts(), "{:#?}", config.diagnostics);
    let expected = format!(
        "service ctf: chroot would run '{}', which is not an executable file: every \
         connection would end at once",
        root.join("helloworld").display()
    );
    assert_eq!(warnings(&config), [(13, expected)]);

    // Present and executable: nothing to say.
    let program = root.join("helloworld");
    std::fs::write(&program, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = load(&conf);
    assert_eq!(warnings(&config), []);
}
