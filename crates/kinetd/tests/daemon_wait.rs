//! `wait = yes` services, stream and datagram: the server gets the listening socket and
//! the daemon leaves it alone until the server exits.

mod daemon_support;

use std::io::Read;
use std::net::UdpSocket;
use std::time::Duration;

use daemon_support::*;

/// Answers one datagram on the socket it was given as stdin, then exits.
const UDP_SERVER: &str = r#"
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
    char buf[512];
    struct sockaddr_storage from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(0, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &len);
    if (n < 0) return 1;
    buf[n] = 0;
    char reply[600];
    int m = snprintf(reply, sizeof reply, "pong %s from %d", buf, getpid());
    sendto(0, reply, m, 0, (struct sockaddr *)&from, len);
    return 0;
}
"#;

/// Accepts one connection on the listening socket it was given as stdin, answers, exits.
const TCP_WAIT_SERVER: &str = r#"
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
    int conn = accept(0, NULL, NULL);
    if (conn < 0) return 1;
    char reply[64];
    int m = snprintf(reply, sizeof reply, "served by %d\n", getpid());
    write(conn, reply, m);
    close(conn);
    return 0;
}
"#;

fn wait_service(
    name: &str,
    port: u16,
    server: &std::path::Path,
    log: &std::path::Path,
    dgram: bool,
) -> String {
    let text = service(name, port, server, log, "").replace("wait = no", "wait = yes");
    if dgram {
        text.replace("socket_type = stream", "socket_type = dgram")
            .replace("protocol = tcp", "protocol = udp")
    } else {
        text
    }
}

#[test]
fn udp_service_gets_the_socket_and_answers_each_datagram() {
    let dir = TempDir::new("udp");
    let port = {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let server = compile_c(&dir, "udp", UDP_SERVER, &[]);
    let log = dir.join("svc.log");
    let _daemon = Daemon::start(&dir, &wait_service("udp", port, &server, &log, true), &[]);

    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0u8; 600];
    for word in ["one", "two"] {
        client
            .send_to(word.as_bytes(), ("127.0.0.1", port))
            .unwrap();
        let (n, _) = client.recv_from(&mut buf).unwrap();
        let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(reply.starts_with(&format!("pong {word} from ")), "{reply}");
    }
    let text = wait_for_count(&log, "EXIT: udp status=0", 2);
    assert!(text.contains("START: udp pid="), "{text}");
    assert!(
        text.contains("from=127.0.0.1"),
        "the sender is known: {text}"
    );
}

#[test]
fn tcp_wait_service_gets_the_listening_socket() {
    let dir = TempDir::new("tcpwait");
    let port = free_port();
    let server = compile_c(&dir, "tcpwait", TCP_WAIT_SERVER, &[]);
    let log = dir.join("svc.log");
    let _daemon = Daemon::start(&dir, &wait_service("tw", port, &server, &log, false), &[]);

    let mut first = String::new();
    connect(port).read_to_string(&mut first).unwrap();
    assert!(first.starts_with("served by "), "{first}");
    wait_for_count(&log, "EXIT: tw status=0", 1);
    // The socket is polled again once the server exits: the next client gets a new one.
    std::thread::sleep(Duration::from_millis(50));
    let mut second = String::new();
    connect(port).read_to_string(&mut second).unwrap();
    assert!(second.starts_with("served by "), "{second}");
    assert_ne!(first, second, "each connection had its own server");
}
